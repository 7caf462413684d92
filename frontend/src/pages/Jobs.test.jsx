import { act, cleanup, fireEvent, render, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, setSession } from "../api.js";
import { AuthProvider } from "../auth.jsx";
import Jobs from "./Jobs.jsx";

function jobsPage(state, kind = "device.command") {
  const job = {
    id: 5,
    kind,
    subject_id: 1,
    due_at: "2030-01-01T12:00:00Z",
    state,
    lateness: null,
    attempts: 0,
    max_attempts: 5,
    last_error: null,
    // What the API says: a command may be cancelled until it finishes, a poll's close never.
    cancellable: kind === "device.command" && state === "scheduled",
  };
  return { items: [job], page: 1, pages: 1, total: 1 };
}

beforeEach(() => setSession("tok-123", "ada"));

afterEach(() => {
  cleanup();
  vi.restoreAllMocks();
  setSession(null);
});

describe("Jobs", () => {
  it("shows a busy, disabled cancel button until the table shows the job cancelled", async () => {
    vi.spyOn(api, "jobs")
      .mockResolvedValueOnce(jobsPage("scheduled"))
      .mockResolvedValue(jobsPage("cancelled"));
    let answer;
    vi.spyOn(api, "cancelJob").mockReturnValue(new Promise((resolve) => (answer = resolve)));
    render(
      <AuthProvider>
        <Jobs />
      </AuthProvider>,
    );
    fireEvent.click(await screen.findByRole("button", { name: "Cancel job 5" }));

    expect(screen.getByRole("button", { name: "Cancelling job 5…" }).disabled).toBe(true);
    await act(async () => answer(jobsPage("cancelled").items[0]));
    expect(await screen.findByText("cancelled", { selector: ".badge" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
  });

  it("offers no cancel button for a job its kind does not let one cancel", async () => {
    vi.spyOn(api, "jobs").mockResolvedValue(jobsPage("scheduled", "poll.close"));
    render(
      <AuthProvider>
        <Jobs />
      </AuthProvider>,
    );
    expect(await screen.findByText("poll.close")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
  });

  it("asks a signed-out visitor to sign in and fetches nothing", async () => {
    setSession(null);
    const jobs = vi.spyOn(api, "jobs").mockResolvedValue(jobsPage("scheduled"));
    render(
      <MemoryRouter>
        <AuthProvider>
          <Jobs />
        </AuthProvider>
      </MemoryRouter>,
    );
    const link = await screen.findByRole("link", { name: "Sign in" });
    expect(link.closest("p").textContent).toBe("Sign in to see your jobs.");
    expect(screen.queryByTestId("jobs-table")).toBeNull();
    expect(jobs).not.toHaveBeenCalled();
  });
});
