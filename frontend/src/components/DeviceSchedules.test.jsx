import { cleanup, fireEvent, screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, setSession } from "../api.js";
import { DeviceSchedules } from "./DeviceSchedules.jsx";
import { renderWithProviders } from "../test-utils.jsx";

const WEEKDAYS_7 = {
  id: 9,
  device_id: 4,
  action: "switch_on",
  cron: "0 7 * * 1,2,3,4,5",
  timezone: "Europe/Paris",
  paused: false,
  skipped_count: 2,
  next_runs: [
    { at: "2027-03-26T06:00:00Z", local: "2027-03-26T07:00:00+01:00" },
    { at: "2027-03-29T05:00:00Z", local: "2027-03-29T07:00:00+02:00" },
  ],
  history: [],
};
const ADDED = {
  ...WEEKDAYS_7,
  id: 10,
  action: "switch_off",
  cron: "30 23 * * 6,0",
  timezone: "Australia/Sydney",
  skipped_count: 0,
  next_runs: [{ at: "2027-04-03T12:30:00Z", local: "2027-04-03T23:30:00+11:00" }],
};

beforeEach(() => setSession("tok-123", "ada"));

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
  setSession(null);
});

describe("DeviceSchedules", () => {
  it("lists each schedule's next runs in the browser's time and in the schedule's zone", async () => {
    vi.spyOn(api, "schedules").mockResolvedValue({ items: [WEEKDAYS_7] });
    renderWithProviders(<DeviceSchedules deviceId={4} />);
    const item = await screen.findByTestId("schedule-9");
    expect(item.textContent).toContain("Switch on at 07:00 on Mon, Tue, Wed, Thu, Fri (Europe/Paris)");
    expect(item.textContent).toContain("2 missed and skipped");
    const runs = within(item).getAllByRole("listitem");
    expect(runs.map((run) => run.textContent)).toEqual([
      `${new Date("2027-03-26T06:00:00Z").toLocaleString()} your time · 2027-03-26 07:00 (UTC+01:00) in Europe/Paris`,
      `${new Date("2027-03-29T05:00:00Z").toLocaleString()} your time · 2027-03-29 07:00 (UTC+02:00) in Europe/Paris`,
    ]);
  });

  it("adds a schedule from a time, weekdays and a zone defaulting to the browser's, and shows its next run", async () => {
    const list = vi
      .spyOn(api, "schedules")
      .mockResolvedValueOnce({ items: [] })
      .mockResolvedValue({ items: [ADDED] });
    const create = vi.spyOn(api, "createSchedule").mockResolvedValue(ADDED);
    renderWithProviders(<DeviceSchedules deviceId={4} />);
    expect(await screen.findByText("No schedules yet.")).toBeTruthy();
    const zone = screen.getByLabelText("Time zone");
    expect(zone.value).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone);

    fireEvent.change(screen.getByLabelText("Action"), { target: { value: "switch_off" } });
    fireEvent.change(screen.getByLabelText("Time of day"), { target: { value: "23:30" } });
    for (const day of ["Mon", "Tue", "Wed", "Thu", "Fri"]) {
      fireEvent.click(screen.getByLabelText(day));
    }
    fireEvent.click(screen.getByLabelText("Sat"));
    fireEvent.click(screen.getByLabelText("Sun"));
    fireEvent.change(zone, { target: { value: "Australia/Sydney" } });
    fireEvent.click(screen.getByRole("button", { name: "Add schedule" }));

    const item = await screen.findByTestId("schedule-10");
    expect(create).toHaveBeenCalledWith(4, {
      action: "switch_off",
      cron: "30 23 * * 0,6",
      timezone: "Australia/Sydney",
    });
    expect(list).toHaveBeenCalledTimes(2);
    expect(item.textContent).toContain("Switch off at 23:30 on Sat, Sun (Australia/Sydney)");
    expect(item.textContent).toContain("2027-04-03 23:30 (UTC+11:00) in Australia/Sydney");
  });

  it("shows the API's refusal next to the field it names", async () => {
    vi.spyOn(api, "schedules").mockResolvedValue({ items: [] });
    vi.spyOn(api, "createSchedule").mockRejectedValue(
      new ApiError("Some fields are invalid: timezone", {
        status: 422,
        fieldErrors: { timezone: "Unknown time zone 'Mars/Olympus'." },
      }),
    );
    renderWithProviders(<DeviceSchedules deviceId={4} />);
    fireEvent.click(await screen.findByRole("button", { name: "Add schedule" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Unknown time zone 'Mars/Olympus'.");
    expect(screen.getByLabelText("Time zone").getAttribute("aria-describedby")).toBe(
      "schedule-zone-error",
    );
  });

  it("pauses, resumes and deletes a schedule", async () => {
    const paused = { ...WEEKDAYS_7, paused: true, next_runs: [] };
    vi.spyOn(api, "schedules")
      .mockResolvedValueOnce({ items: [WEEKDAYS_7] })
      .mockResolvedValueOnce({ items: [paused] })
      .mockResolvedValue({ items: [] });
    const update = vi.spyOn(api, "updateSchedule").mockResolvedValue(paused);
    const remove = vi.spyOn(api, "deleteSchedule").mockResolvedValue(null);
    renderWithProviders(<DeviceSchedules deviceId={4} />);

    fireEvent.click(await screen.findByRole("button", { name: "Pause schedule" }));
    expect(await screen.findByText("Paused: no runs planned.")).toBeTruthy();
    expect(update).toHaveBeenCalledWith(4, 9, { paused: true });
    expect(screen.getByRole("button", { name: "Resume schedule" })).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Delete schedule" }));
    fireEvent.click(screen.getByRole("button", { name: "Yes, delete" }));
    expect(await screen.findByText("No schedules yet.")).toBeTruthy();
    expect(remove).toHaveBeenCalledWith(4, 9);
  });
});
