import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Countdown } from "./Countdown.jsx";

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
