import { act, cleanup, render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, setSession } from "../api.js";
import { AuthProvider } from "../auth.jsx";
import Locations from "./Locations.jsx";

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
    render(
      <MemoryRouter>
        <AuthProvider>
          <Locations />
        </AuthProvider>
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
});
