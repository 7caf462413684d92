import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, setSession } from "./api.js";
import App from "./App.jsx";
import { renderWithProviders } from "./test-utils.jsx";

const DEVICES = {
  items: [
    {
      id: 4,
      name: "Ada's thermostat",
      location: "lab",
      vendor: "simulated",
      vendor_id: "t-4",
      interval: 60,
      paused: false,
      online: true,
      is_on: true,
      last_seen_at: null,
    },
  ],
};

function renderApp(path) {
  return renderWithProviders(
    <MemoryRouter initialEntries={[path]}>
      <App />
    </MemoryRouter>,
  );
}

beforeEach(() => vi.useFakeTimers());

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.restoreAllMocks();
  setSession(null);
});

describe("the session and the cache", () => {
  it("drops the devices on signing out, and stops fetching them", async () => {
    setSession("tok-123", "ada");
    const devices = vi.spyOn(api, "devices").mockResolvedValue(DEVICES);
    const { client } = renderApp("/devices");
    await act(async () => {});
    expect(screen.getByText("Ada's thermostat")).toBeTruthy();
    expect(client.getQueryData(["devices"])).toEqual(DEVICES);

    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Sign out" })));
    expect(screen.queryByText("Ada's thermostat")).toBeNull();
    expect(screen.getByText(/see and register your devices/)).toBeTruthy();
    // Nothing private stays in the cache for whoever signs in next.
    expect(client.getQueryData(["devices"])).toBeUndefined();
    const calls = devices.mock.calls.length;
    await act(async () => vi.advanceTimersByTime(20000));
    expect(devices).toHaveBeenCalledTimes(calls);
  });

  it("drops the devices when the server says the token is no longer valid", async () => {
    setSession("tok-123", "ada");
    vi.spyOn(api, "devices").mockResolvedValue(DEVICES);
    const { client } = renderApp("/devices");
    await act(async () => {});
    expect(screen.getByText("Ada's thermostat")).toBeTruthy();

    // What request() does on a 401 with a token.
    await act(async () => {
      setSession(null);
      window.dispatchEvent(new Event("punctual:signed-out"));
    });
    expect(screen.queryByText("Ada's thermostat")).toBeNull();
    expect(client.getQueryData(["devices"])).toBeUndefined();
  });

  it.each([
    ["/devices", ["devices"]],
    ["/devices/4", ["device", "observations", "schedules"]],
    ["/locations", ["locations", "locationSummary"]],
    ["/jobs", ["jobs"]],
  ])("fetches nothing private for a signed-out visitor on %s", async (path, names) => {
    const spies = names.map((name) => vi.spyOn(api, name).mockResolvedValue({ items: [] }));
    renderApp(path);
    await act(async () => vi.advanceTimersByTime(10000));
    expect(screen.getAllByRole("link", { name: "Sign in" }).length).toBeGreaterThan(1);
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });
});
