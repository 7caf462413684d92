import { useEffect, useRef, useState } from "react";

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
