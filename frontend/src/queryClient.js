import { QueryClient } from "@tanstack/react-query";

/**
 * Retry a failed read up to 3 times (1 s, 2 s, 4 s apart: TanStack's default backoff) when the
 * server is unreachable (ApiError status 0) or failing (5xx); never on a 4xx, which asking again
 * cannot change (not found, not signed in, forbidden, invalid).
 */
export function shouldRetry(failureCount, error) {
  const status = error?.status;
  if (typeof status === "number" && status >= 400 && status < 500) return false;
  return failureCount < 3;
}

/**
 * The app's query client. Pages poll with `refetchInterval` (keeping the last data on screen),
 * as they did before TanStack Query, so focusing the window does not refetch everything again
 * (no refetch storms); a page visited again shows what is cached while it refetches. Polling
 * continues in a hidden tab, as the hand-written intervals did. Changes (mutations) are sent
 * once: a retried vote or command could be applied twice.
 */
export function createQueryClient(overrides = {}) {
  return new QueryClient({
    defaultOptions: {
      queries: {
        retry: shouldRetry,
        staleTime: 0,
        refetchOnWindowFocus: false,
        refetchIntervalInBackground: true,
        ...overrides.queries,
      },
      mutations: { retry: false, ...overrides.mutations },
    },
  });
}
