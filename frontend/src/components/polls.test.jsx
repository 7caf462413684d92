import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Countdown, Results } from "./polls.jsx";

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("Countdown", () => {
  it("ticks every second without refetching", () => {
    vi.useFakeTimers();
    const poll = { status: "open", seconds_remaining: 7, receivedAt: Date.now() };
    render(<Countdown poll={poll} />);
    expect(screen.getByTestId("countdown").textContent).toBe("7 seconds remaining");
    act(() => vi.advanceTimersByTime(2000));
    expect(screen.getByTestId("countdown").textContent).toBe("5 seconds remaining");
  });
});

describe("Results", () => {
  it("marks every winner of a tie and renders names as text", () => {
    const results = {
      total_votes: 2,
      tie: true,
      winners: [1, 2],
      options: [
        { option_id: 1, name: "<b>a</b>", votes: 1, share: 0.5 },
        { option_id: 2, name: "b", votes: 1, share: 0.5 },
        { option_id: 3, name: "c", votes: 0, share: 0 },
      ],
    };
    render(<Results results={results} />);
    expect(screen.getAllByText("Winner")).toHaveLength(2);
    expect(screen.getByText("<b>a</b>")).toBeTruthy();
    expect(screen.getByText(/a tie/)).toBeTruthy();
  });
});
