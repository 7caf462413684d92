import { describe, expect, it } from "vitest";
import { formatCount, formatRemaining, localInputToIso, toLocalInputValue } from "./format.js";

describe("formatRemaining", () => {
  it.each([
    [5, "5 seconds remaining"],
    [1, "1 second remaining"],
    [59.9, "59 seconds remaining"],
    [60, "1 minute remaining"],
    [3 * 60 + 20, "3 minutes remaining"],
    [3600, "1 hour remaining"],
    [2 * 3600 + 59 * 60, "2 hours remaining"],
    [86400, "1 day remaining"],
    [4 * 86400 + 3600, "4 days remaining"],
  ])("%s s -> %s", (seconds, text) => {
    expect(formatRemaining(seconds)).toBe(text);
  });

  it("says closed at zero or below", () => {
    expect(formatRemaining(0)).toBe("closed");
    expect(formatRemaining(0.4)).toBe("closed");
    expect(formatRemaining(-3)).toBe("closed");
  });
});

describe("datetime-local values", () => {
  it("round-trips a local time to the same instant in UTC", () => {
    const date = new Date(2030, 4, 6, 7, 8, 9);
    const value = toLocalInputValue(date);
    expect(value).toBe("2030-05-06T07:08:09");
    expect(localInputToIso(value)).toBe(date.toISOString());
  });

  it("gives null for an empty value", () => {
    expect(localInputToIso("")).toBeNull();
  });
});

describe("formatCount", () => {
  it("writes thousands with separators, and a capped count as at least that many", () => {
    expect(formatCount(1234)).toBe("1,234");
    expect(formatCount(10000, true)).toBe("10,000+");
    expect(formatCount(0, false)).toBe("0");
  });
});
