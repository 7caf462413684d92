import { notifyManager, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { AuthProvider } from "./auth.jsx";
import { createQueryClient } from "./queryClient.js";

// TanStack Query tells components of new data in a setTimeout(0); tests with fake timers
// (the countdowns) would never see it. A microtask keeps that batching without a timer.
notifyManager.setScheduler(queueMicrotask);

/** A fresh client per test: nothing cached from another test, and no retries to wait for. */
export function createTestQueryClient() {
  return createQueryClient({ queries: { retry: false, gcTime: Infinity } });
}

/**
 * render() inside the app's providers: a fresh query client (returned as `client`) and the
 * session from localStorage. Routers stay in each test, which picks its own routes.
 */
export function renderWithProviders(ui, { client = createTestQueryClient(), ...options } = {}) {
  const wrapper = ({ children }) => (
    <QueryClientProvider client={client}>
      <AuthProvider>{children}</AuthProvider>
    </QueryClientProvider>
  );
  return { client, ...render(ui, { wrapper, ...options }) };
}
