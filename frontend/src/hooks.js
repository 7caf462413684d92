import { useCallback, useEffect, useRef, useState } from "react";
import { useAuth } from "./auth.jsx";

/** Call `callback` every `ms` milliseconds while `ms` is a number (null pauses). */
export function useInterval(callback, ms) {
  const saved = useRef(callback);
  useEffect(() => {
    saved.current = callback;
  }, [callback]);
  useEffect(() => {
    if (ms === null || ms === undefined) return undefined;
    const id = setInterval(() => saved.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}

/** The current time, updated every second: drives countdowns without refetching. */
export function useNow(ms = 1000) {
  const [now, setNow] = useState(() => Date.now());
  useInterval(() => setNow(Date.now()), ms);
  return now;
}

/**
 * Load data with `loader()`; returns {data, error, loading, reload}. `refreshMs` refetches
 * silently in the background while it is a number (keeping the last data on screen); it may be
 * a function of the current data, returning a number or null.
 */
export function useResource(loader, deps, refreshMs = null) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const loaderRef = useRef(loader);
  useEffect(() => {
    loaderRef.current = loader;
  });
  const generation = useRef(0);

  const reload = useCallback(async ({ quiet = false } = {}) => {
    const mine = ++generation.current;
    if (!quiet) setState((s) => ({ ...s, loading: true }));
    try {
      const data = await loaderRef.current();
      if (mine === generation.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === generation.current) setState((s) => ({ ...s, error, loading: false }));
    }
  }, []);

  useEffect(() => {
    setState({ data: null, error: null, loading: true });
    reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  const ms = typeof refreshMs === "function" ? refreshMs(state.data) : refreshMs;
  useInterval(() => reload({ quiet: true }), ms);
  return { ...state, reload };
}

/**
 * useResource for what only its owner may read (devices, locations, jobs): signed out, nothing
 * is fetched or refetched and `data` is null; signing in or out loads again.
 */
export function useSignedInResource(loader, deps, refreshMs = null) {
  const { signedIn } = useAuth();
  return useResource(
    () => (signedIn ? loader() : Promise.resolve(null)),
    [signedIn, ...deps],
    signedIn ? refreshMs : null,
  );
}

/**
 * One action at a time (a vote, a command, a save): returns {busy, error, run}. `run(action)`
 * awaits `action()` with `busy` set, so its buttons stay disabled until the answer arrives; a
 * failure is kept in `error` for the page to show in words.
 */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: null });

  const run = useCallback(async (action) => {
    setState({ busy: true, error: null });
    try {
      await action();
      setState({ busy: false, error: null });
    } catch (error) {
      setState({ busy: false, error });
    }
  }, []);

  return { ...state, run };
}

/**
 * A form that sends one change: returns {busy, error, saved, submit}. `submit` (the form's
 * onSubmit) awaits `send()`, then calls `onSaved()`; the API's error is kept for the form.
 */
export function useSave(send, onSaved) {
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useAction();

  async function submit(event) {
    event.preventDefault();
    setSaved(false);
    await run(async () => {
      await send();
      setSaved(true);
      onSaved();
    });
  }

  return { busy, error, saved, submit };
}
