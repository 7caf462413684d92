import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, setSession } from "../api.js";
import Jobs from "./Jobs.jsx";
import { renderWithProviders } from "../test-utils.jsx";

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
    renderWithProviders(<Jobs />);
    fireEvent.click(await screen.findByRole("button", { name: "Cancel job 5" }));

    expect(screen.getByRole("button", { name: "Cancelling job 5…" }).disabled).toBe(true);
    await act(async () => answer(jobsPage("cancelled").items[0]));
    expect(await screen.findByText("cancelled", { selector: ".badge" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
  });

  it("offers no cancel button for a job its kind does not let one cancel", async () => {
    vi.spyOn(api, "jobs").mockResolvedValue(jobsPage("scheduled", "poll.close"));
    renderWithProviders(<Jobs />);
    expect(await screen.findByText("poll.close")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Cancel/ })).toBeNull();
  });

  it("asks a signed-out visitor to sign in and fetches nothing", async () => {
    setSession(null);
    const jobs = vi.spyOn(api, "jobs").mockResolvedValue(jobsPage("scheduled"));
    renderWithProviders(
      <MemoryRouter>
        <Jobs />
      </MemoryRouter>,
    );
    const link = await screen.findByRole("link", { name: "Sign in" });
    expect(link.closest("p").textContent).toBe("Sign in to see your jobs.");
    expect(screen.queryByTestId("jobs-table")).toBeNull();
    expect(jobs).not.toHaveBeenCalled();
  });
});

describe("Jobs total", () => {
  it("shows a capped total as at least that many, and lets one page on past it", async () => {
    // The last page the capped count covers, and full: more may follow.
    const job = jobsPage("succeeded").items[0];
    const items = Array.from({ length: 20 }, (_, i) => ({ ...job, id: i + 1 }));
    const last = { items, page: 1, pages: 1, total: 20, total_capped: true };
    const jobs = vi.spyOn(api, "jobs").mockResolvedValue(last);
    renderWithProviders(<Jobs />);
    expect(await screen.findByText(/Page 1 of 1\+ · 20\+ jobs/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await vi.waitFor(() => expect(jobs).toHaveBeenLastCalledWith(expect.objectContaining({ page: 2 })));
  });

  it("writes a large capped total with separators", async () => {
    const capped = { ...jobsPage("succeeded"), pages: 500, total: 10000, total_capped: true };
    vi.spyOn(api, "jobs").mockResolvedValue(capped);
    renderWithProviders(<Jobs />);
    expect(await screen.findByText(/Page 1 of 500\+ · 10,000\+ jobs/)).toBeTruthy();
  });

  it("shows an exact total as it is", async () => {
    vi.spyOn(api, "jobs").mockResolvedValue({ ...jobsPage("succeeded"), total_capped: false });
    renderWithProviders(<Jobs />);
    expect(await screen.findByText(/Page 1 of 1 · 1 jobs/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Next" }).disabled).toBe(true);
  });
});
