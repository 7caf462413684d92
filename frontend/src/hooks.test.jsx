import { act, cleanup, renderHook } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { useAction, useSave } from "./hooks.js";

afterEach(cleanup);

describe("useAction", () => {
  it("is busy until the action settles and keeps its error until the next run", async () => {
    const { result } = renderHook(() => useAction());
    let answer;
    let running;
    act(() => {
      running = result.current.run(() => new Promise((_, reject) => (answer = reject)));
    });
    expect(result.current.busy).toBe(true);
    await act(async () => {
      answer(new Error("Refused."));
      await running;
    });
    expect(result.current).toMatchObject({ busy: false, error: { message: "Refused." } });

    await act(() => result.current.run(async () => {}));
    expect(result.current).toMatchObject({ busy: false, error: null });
  });
});

describe("useSave", () => {
  it("says saved and calls onSaved only once the change is accepted", async () => {
    const send = vi.fn().mockRejectedValueOnce(new Error("Invalid.")).mockResolvedValue({});
    const onSaved = vi.fn();
    const { result } = renderHook(() => useSave(send, onSaved));
    const event = { preventDefault: vi.fn() };

    await act(() => result.current.submit(event));
    expect(result.current).toMatchObject({ saved: false, error: { message: "Invalid." } });
    expect(onSaved).not.toHaveBeenCalled();

    await act(() => result.current.submit(event));
    expect(result.current).toMatchObject({ busy: false, saved: true, error: null });
    expect(onSaved).toHaveBeenCalledOnce();
    expect(event.preventDefault).toHaveBeenCalledTimes(2);
  });
});
