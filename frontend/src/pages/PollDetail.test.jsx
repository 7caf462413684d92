import { act, cleanup, render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, setSession } from "../api.js";
import { AuthProvider } from "../auth.jsx";
import PollDetail from "./PollDetail.jsx";

const POLL = {
  id: 7,
  title: "Lunch colour",
  owner: "ada",
  status: "open",
  close_date: "2030-01-01T12:00:00Z",
  closed_at: null,
  seconds_remaining: 2,
  options: [
    { id: 1, name: "Blue", votes: 0 },
    { id: 2, name: "Green", votes: 0 },
  ],
  total_votes: 0,
  results: null,
  my_vote: null,
};

function renderPoll() {
  render(
    <MemoryRouter initialEntries={["/polls/7"]}>
      <AuthProvider>
        <Routes>
          <Route path="/polls/:id" element={<PollDetail />} />
        </Routes>
      </AuthProvider>
    </MemoryRouter>,
  );
}

beforeEach(() => {
  setSession("tok-123", "ada");
  vi.useFakeTimers();
});

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.restoreAllMocks();
  setSession(null);
});

describe("PollDetail", () => {
  it("disables voting once the countdown reaches zero, before a refetch says closed", async () => {
    // The first fetch answers; the refetches never do, like a server slow to answer.
    vi.spyOn(api, "poll")
      .mockResolvedValueOnce(POLL)
      .mockReturnValue(new Promise(() => {}));
    renderPoll();
    await act(async () => {});
    const votes = ["Vote for Blue", "Vote for Green"].map((name) =>
      screen.getByRole("button", { name }),
    );
    expect(votes.map((button) => button.disabled)).toEqual([false, false]);
    expect(screen.getByRole("button", { name: "Close now" }).disabled).toBe(false);
    expect(screen.queryByText(/Voting has ended/)).toBeNull();

    act(() => vi.advanceTimersByTime(2000));
    expect(screen.getByTestId("countdown").textContent).toBe("closing…");
    expect(screen.getByTestId("poll-status").textContent).toBe("open");
    expect(votes.map((button) => button.disabled)).toEqual([true, true]);
    expect(screen.getByRole("button", { name: "Close now" }).disabled).toBe(true);
    const explanation = screen.getByText(/Voting has ended: the close time has passed/);
    expect(votes[0].getAttribute("aria-describedby")).toBe(explanation.id);
  });
});
