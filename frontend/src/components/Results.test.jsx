import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { Results } from "./Results.jsx";

afterEach(cleanup);

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
