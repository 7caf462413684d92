import { describe, expect, it } from "vitest";
import { ApiError } from "./api.js";
import { createQueryClient, shouldRetry } from "./queryClient.js";

describe("the query client's retries", () => {
  it("retries an unreachable or failing server 3 times", () => {
    for (const status of [0, 500, 503]) {
      const error = new ApiError("Down.", { status });
      expect([0, 1, 2, 3].map((count) => shouldRetry(count, error))).toEqual([
        true,
        true,
        true,
        false,
      ]);
    }
  });

  it("never retries a 4xx, which asking again cannot change", () => {
    for (const status of [400, 401, 403, 404, 409, 422]) {
      expect(shouldRetry(0, new ApiError("No.", { status }))).toBe(false);
    }
  });

  it("polls only where a page asks, not on focus, and never resends a change", () => {
    const defaults = createQueryClient().getDefaultOptions();
    expect(defaults.queries).toMatchObject({ refetchOnWindowFocus: false, retry: shouldRetry });
    expect(defaults.mutations.retry).toBe(false);
  });
});
