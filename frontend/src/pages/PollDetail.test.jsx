import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, setSession } from "../api.js";
import { toLocalInputValue } from "../format.js";
import PollDetail from "./PollDetail.jsx";
import { renderWithProviders } from "../test-utils.jsx";

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
  renderWithProviders(
    <MemoryRouter initialEntries={["/polls/7"]}>
      <Routes>
        <Route path="/polls" element={<p>The polls list</p>} />
        <Route path="/polls/:id" element={<PollDetail />} />
      </Routes>
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

  it("deletes only once the owner confirms in the page, then shows the polls list", async () => {
    vi.spyOn(api, "poll").mockResolvedValue({ ...POLL, seconds_remaining: 3600 });
    let answer;
    const remove = vi
      .spyOn(api, "deletePoll")
      .mockRejectedValueOnce(new ApiError("Poll 7 is closed.", { status: 409 }))
      .mockReturnValue(new Promise((resolve) => (answer = resolve)));
    renderPoll();
    await act(async () => {});
    const button = (name) => screen.getByRole("button", { name });

    fireEvent.click(button("Delete poll"));
    expect(screen.getByRole("group", { name: /Delete this poll and its votes\?/ })).toBeTruthy();
    expect(document.activeElement).toBe(button("Keep it"));
    fireEvent.click(button("Keep it"));
    expect(screen.queryByRole("button", { name: "Yes, delete" })).toBeNull();
    expect(document.activeElement).toBe(button("Delete poll"));
    expect(remove).not.toHaveBeenCalled();

    // Refused: the reason is shown in words and the poll stays.
    fireEvent.click(button("Delete poll"));
    await act(async () => fireEvent.click(button("Yes, delete")));
    expect(screen.getByRole("alert").textContent).toBe("Poll 7 is closed.");
    expect(screen.getByTestId("poll-title").textContent).toBe("Lunch colour");

    fireEvent.click(button("Delete poll"));
    fireEvent.click(button("Yes, delete"));
    expect(button("Deleting…").disabled).toBe(true);
    expect(button("Keep it").disabled).toBe(true);
    expect(screen.queryByRole("alert")).toBeNull();
    expect(remove).toHaveBeenLastCalledWith(7);
    await act(async () => answer(null));
    expect(screen.getByText("The polls list")).toBeTruthy();
  });

  it("sends a new close time as UTC and shows its error next to the input", async () => {
    vi.spyOn(api, "poll").mockResolvedValue({ ...POLL, seconds_remaining: 3600 });
    const update = vi.spyOn(api, "updatePoll").mockRejectedValue(
      new ApiError("Some fields are invalid.", {
        status: 422,
        fieldErrors: { close_date: "The close date is in the past." },
      }),
    );
    renderPoll();
    await act(async () => {});
    const input = screen.getByLabelText(/New close time/);
    // The current close time, in local wall time (jsdom drops zero seconds from the value).
    expect(new Date(input.value).toISOString()).toBe("2030-01-01T12:00:00.000Z");

    const value = toLocalInputValue(new Date("2030-01-02T08:00:00Z"));
    fireEvent.change(input, { target: { value } });
    const change = screen.getByRole("button", { name: "Change close time" });
    await act(async () => fireEvent.click(change));
    expect(update).toHaveBeenCalledWith(7, { close_date: "2030-01-02T08:00:00.000Z" });
    const error = screen.getByText("The close date is in the past.");
    expect(input.getAttribute("aria-describedby")).toBe(error.id);
    expect(input.getAttribute("aria-invalid")).toBe("true");
  });

  it("keeps the vote buttons disabled until the refetched poll shows the vote", async () => {
    const voted = {
      ...POLL,
      seconds_remaining: 3600,
      my_vote: 2,
      total_votes: 1,
      options: [POLL.options[0], { ...POLL.options[1], votes: 1 }],
    };
    let refetched;
    const poll = vi
      .spyOn(api, "poll")
      .mockResolvedValueOnce({ ...POLL, seconds_remaining: 3600 })
      .mockReturnValue(new Promise((resolve) => (refetched = resolve)));
    const vote = vi.spyOn(api, "vote").mockResolvedValue({ option_id: 2 });
    renderPoll();
    await act(async () => {});

    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Vote for Green" })));
    expect(vote).toHaveBeenCalledWith(7, 2);
    // Accepted, and the poll is being fetched again (invalidated): still busy.
    expect(poll).toHaveBeenCalledTimes(2);
    expect(screen.getByRole("button", { name: "Vote for Blue" }).disabled).toBe(true);
    expect(screen.queryByText("Thanks, your vote is counted.")).toBeNull();

    await act(async () => refetched(voted));
    expect(screen.getByText("Thanks, your vote is counted.")).toBeTruthy();
    expect(screen.getByText(/1 vote · your vote/)).toBeTruthy();
  });

  it("shows a refused vote in words and lets one vote again", async () => {
    vi.spyOn(api, "poll").mockResolvedValue({ ...POLL, seconds_remaining: 3600 });
    vi.spyOn(api, "vote").mockRejectedValue(new ApiError("Poll 7 is closed.", { status: 409 }));
    renderPoll();
    await act(async () => {});
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Vote for Blue" })));
    expect(screen.getByRole("alert").textContent).toBe("Poll 7 is closed.");
    expect(screen.getByRole("button", { name: "Vote for Blue" }).disabled).toBe(false);
  });
});
