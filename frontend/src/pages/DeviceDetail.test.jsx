import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, setSession } from "../api.js";
import DeviceDetail from "./DeviceDetail.jsx";
import { renderWithProviders } from "../test-utils.jsx";

const HOUR_MS = 3600 * 1000;
const DEVICE = {
  id: 4,
  name: "Lab thermostat",
  location: "lab",
  vendor: "simulated",
  vendor_id: "t-4",
  interval: 60,
  paused: true,
  online: true,
  is_on: true,
  last_seen_at: "2026-12-01T11:59:00.000Z",
  next_poll_at: null,
  last_error: null,
  attributes: [{ name: "temperature", value: 21, units: "°C", valid_at: "2026-12-01T11:59:00Z" }],
};
const RAW = {
  items: [
    { name: "temperature", value: 21, units: "°C", valid_at: "2026-12-01T11:59:00.000Z" },
    { name: "temperature", value: 20, units: "°C", valid_at: "2026-12-01T11:58:00.000Z" },
  ],
  limit: 1000,
  next_before: null,
};
const BUCKETS = [
  { attribute: "temperature", start: "2026-12-01T10:00:00.000Z", min: 19, max: 22, mean: 20.5, count: 3 },
  { attribute: "temperature", start: "2026-12-01T11:00:00.000Z", min: 20, max: 21, mean: 20.5, count: 2 },
];

function renderPage() {
  renderWithProviders(
    <MemoryRouter initialEntries={["/devices/4"]}>
      <Routes>
        <Route path="/devices/:id" element={<DeviceDetail />} />
      </Routes>
    </MemoryRouter>,
  );
}

/** The range asked for, in ms, from an observationBuckets call's {from, to}. */
const span = ({ from, to }) => new Date(to).getTime() - new Date(from).getTime();

beforeEach(() => {
  setSession("tok-123", "ada");
  vi.spyOn(api, "device").mockResolvedValue(DEVICE);
  vi.spyOn(api, "observations").mockResolvedValue(RAW);
  vi.spyOn(api, "schedules").mockResolvedValue({ items: [] });
});

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
  setSession(null);
});

describe("DeviceDetail's chart range", () => {
  it("shows the last hour's raw readings, then the buckets of the range picked", async () => {
    let answer;
    const buckets = vi
      .spyOn(api, "observationBuckets")
      .mockReturnValue(new Promise((resolve) => (answer = resolve)));
    renderPage();
    expect((await screen.findByTestId("reading-count")).textContent).toBe(
      "2 readings in the last hour",
    );
    const [id, limit, since] = api.observations.mock.calls[0];
    expect([id, limit]).toEqual(["4", 1000]);
    expect(Math.abs(Date.now() - HOUR_MS - new Date(since).getTime())).toBeLessThan(60000);
    expect(screen.getByTestId("observation-chart")).toBeTruthy();
    expect(buckets).not.toHaveBeenCalled();

    fireEvent.click(screen.getByRole("button", { name: "Last week" }));
    expect(screen.getByRole("button", { name: "Last week" }).getAttribute("aria-pressed")).toBe(
      "true",
    );
    expect(screen.getByRole("button", { name: "Last hour" }).getAttribute("aria-pressed")).toBe(
      "false",
    );
    expect(await screen.findByText("Loading the last week…")).toBeTruthy();
    expect(screen.queryByTestId("observation-chart")).toBeNull();
    expect(buckets).toHaveBeenCalledOnce();
    const [bucketsId, query] = buckets.mock.calls[0];
    expect([bucketsId, query.bucket, span(query)]).toEqual(["4", "1h", 7 * 24 * HOUR_MS]);

    await act(async () => answer({ bucket: "1h", from: query.from, to: query.to, items: BUCKETS }));
    expect(screen.getByTestId("reading-count").textContent).toBe(
      "5 readings in 2 buckets of 1h (mean, with min–max)",
    );
    expect(screen.getByTestId("observation-chart")).toBeTruthy();
    expect(screen.queryByText("Loading the last week…")).toBeNull();
  });

  it.each([
    ["Last day", "5m", 24 * HOUR_MS],
    ["Last week", "1h", 7 * 24 * HOUR_MS],
    ["Last 30 days", "1d", 30 * 24 * HOUR_MS],
  ])("asks for %s in buckets of %s", async (label, bucket, ms) => {
    const buckets = vi
      .spyOn(api, "observationBuckets")
      .mockResolvedValue({ bucket, from: "", to: "", items: [] });
    renderPage();
    fireEvent.click(await screen.findByRole("button", { name: label }));
    await vi.waitFor(() => expect(buckets).toHaveBeenCalledOnce());
    const [, query] = buckets.mock.calls[0];
    expect([query.bucket, span(query)]).toEqual([bucket, ms]);
    expect(await screen.findByText("No readings in this range.")).toBeTruthy();
  });

  it("says why a range could not be loaded, and loads again when picked again", async () => {
    const buckets = vi
      .spyOn(api, "observationBuckets")
      .mockRejectedValueOnce(new ApiError("The server is unavailable (HTTP 503).", { status: 503 }))
      .mockResolvedValue({ bucket: "1d", from: "", to: "", items: BUCKETS });
    renderPage();
    fireEvent.click(await screen.findByRole("button", { name: "Last 30 days" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "The server is unavailable (HTTP 503).",
    );
    expect(screen.queryByTestId("observation-chart")).toBeNull();

    fireEvent.click(screen.getByRole("button", { name: "Last hour" }));
    expect(await screen.findByText("2 readings in the last hour")).toBeTruthy();
    expect(screen.queryByRole("alert")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Last 30 days" }));
    expect(await screen.findByTestId("observation-chart")).toBeTruthy();
    expect(buckets).toHaveBeenCalledTimes(2);
  });
});

describe("DeviceDetail's controls", () => {
  it("switches the device off, then shows the refetched device and follows the command's job", async () => {
    api.device.mockResolvedValueOnce(DEVICE).mockResolvedValue({ ...DEVICE, is_on: false });
    vi.spyOn(api, "job").mockResolvedValue({ id: 31, state: "succeeded", last_error: null });
    let accept;
    const command = vi
      .spyOn(api, "command")
      .mockReturnValue(new Promise((resolve) => (accept = resolve)));
    renderPage();
    expect(await screen.findByText("Lab thermostat")).toBeTruthy();
    const calls = api.device.mock.calls.length;

    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Switch off" })));
    expect(screen.getByRole("button", { name: "Switch on" }).disabled).toBe(true);
    expect(command).toHaveBeenCalledWith(4, false);
    expect(api.device).toHaveBeenCalledTimes(calls);

    await act(async () => accept({ id: 31, state: "queued", last_error: null }));
    // The command's answer invalidates the device, fetched again at once (not in 3 s).
    await vi.waitFor(() => expect(api.device.mock.calls.length).toBeGreaterThan(calls));
    await vi.waitFor(() =>
      expect(screen.getByRole("button", { name: "Switch on" }).disabled).toBe(false),
    );
    expect(await screen.findByText("off")).toBeTruthy();
    expect((await screen.findByTestId("job-status")).textContent).toContain("Switch off");
  });
});
