import { act, cleanup, screen } from "@testing-library/react";
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
});
