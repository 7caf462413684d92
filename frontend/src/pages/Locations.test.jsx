import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, setSession } from "../api.js";
import Locations from "./Locations.jsx";
import { renderWithProviders } from "../test-utils.jsx";

beforeEach(() => setSession("tok-123", "ada"));

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
  setSession(null);
});

describe("Locations", () => {
  it("shows the last refresh loading, and refreshes only once it is known", async () => {
    vi.spyOn(api, "locations").mockResolvedValue([{ location: "lab", devices: 1 }]);
    let fail;
    const summary = vi
      .spyOn(api, "locationSummary")
      .mockImplementation(() => new Promise((_, reject) => (fail = reject)));
    renderWithProviders(
      <MemoryRouter>
        <Locations />
      </MemoryRouter>,
    );
    expect(await screen.findByText("Loading the last refresh…")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Refresh lab" }).disabled).toBe(true);

    // Never refreshed: a 404, which is no error to show.
    await vi.waitFor(() => expect(summary).toHaveBeenCalledOnce());
    await act(async () => fail(new ApiError("No refresh yet.", { status: 404 })));
    expect(screen.queryByText("Loading the last refresh…")).toBeNull();
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.getByRole("button", { name: "Refresh lab" }).disabled).toBe(false);
  });

  it("names the devices that had not answered by the deadline", async () => {
    vi.spyOn(api, "locations").mockResolvedValue([{ location: "lab", devices: 3 }]);
    vi.spyOn(api, "locationSummary").mockResolvedValue({
      id: 7,
      location: "lab",
      total: 3,
      polled: 1,
      state: "done",
      finished_at: "2026-12-01T23:00:00Z",
      summary: {
        devices: 1,
        online: 1,
        attributes: [],
        missing: [
          { id: 2, name: "Shed plug" },
          { id: 3, name: "Attic sensor" },
        ],
      },
    });
    renderWithProviders(
      <MemoryRouter>
        <Locations />
      </MemoryRouter>,
    );
    expect((await screen.findByTestId("missing")).textContent).toBe(
      "No answer by the deadline from Shed plug, Attic sensor",
    );
    expect(screen.getByText("Last refresh: 1 of 3")).toBeTruthy();
  });

  it("follows a started refresh until it is done", async () => {
    vi.spyOn(api, "locations").mockResolvedValue([{ location: "lab", devices: 2 }]);
    const running = { id: 8, location: "lab", total: 2, polled: 0, state: "running", summary: null };
    const done = {
      ...running,
      polled: 2,
      state: "done",
      finished_at: "2026-12-01T23:00:00Z",
      summary: { devices: 2, online: 2, attributes: [], missing: [] },
    };
    const summary = vi
      .spyOn(api, "locationSummary")
      .mockRejectedValueOnce(new ApiError("No refresh yet.", { status: 404 }))
      .mockResolvedValueOnce({ ...running, polled: 1 })
      .mockResolvedValue(done);
    const refresh = vi.spyOn(api, "refreshLocation").mockResolvedValue(running);
    renderWithProviders(
      <MemoryRouter>
        <Locations />
      </MemoryRouter>,
    );
    const button = await screen.findByRole("button", { name: "Refresh lab" });
    await vi.waitFor(() => expect(button.disabled).toBe(false));
    fireEvent.click(button);

    expect(await screen.findByText("Polling devices: 0 of 2")).toBeTruthy();
    expect(refresh).toHaveBeenCalledWith("lab");
    expect(screen.getByRole("button", { name: "Refreshing…" }).disabled).toBe(true);
    expect(await screen.findByText("Polling devices: 1 of 2")).toBeTruthy();
    expect(await screen.findByText("Last refresh: 2 of 2", {}, { timeout: 3000 })).toBeTruthy();
    expect(screen.getByTestId("summary").textContent).toContain("2 of 2 online");
    const calls = summary.mock.calls.length;
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(summary).toHaveBeenCalledTimes(calls);
  });
});
