import { act, cleanup, fireEvent, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../api.js";
import { InlineEditForm } from "./InlineEditForm.jsx";
import { renderWithProviders } from "../test-utils.jsx";

afterEach(cleanup);

function form(props) {
  return (
    <InlineEditForm
      id="interval"
      label="Poll every (seconds)"
      field="interval"
      submitLabel="Save interval"
      savedLabel="Saved."
      onSaved={() => {}}
      send={async () => {}}
      {...props}
    />
  );
}

describe("InlineEditForm", () => {
  it("keeps what is typed over a refetch, until the saved value itself changes", () => {
    const { rerender } = renderWithProviders(form({ current: "10" }));
    const input = screen.getByLabelText("Poll every (seconds)");
    fireEvent.change(input, { target: { value: "30" } });
    rerender(form({ current: "10" }));
    expect(input.value).toBe("30");
    rerender(form({ current: "20" }));
    expect(input.value).toBe("20");
  });

  it("sends the typed value and shows its field's error next to the input", async () => {
    const send = vi
      .fn()
      .mockRejectedValueOnce(
        new ApiError("Some fields are invalid.", {
          status: 422,
          fieldErrors: { interval: "Poll every 1 to 86400 s." },
        }),
      )
      .mockResolvedValue({});
    const onSaved = vi.fn();
    renderWithProviders(form({ current: "10", send, onSaved }));
    const input = screen.getByLabelText("Poll every (seconds)");
    fireEvent.change(input, { target: { value: "0" } });
    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Save interval" })));

    expect(send).toHaveBeenCalledWith("0");
    const error = screen.getByRole("alert");
    expect(error.textContent).toBe("Poll every 1 to 86400 s.");
    expect(input.getAttribute("aria-describedby")).toBe(error.id);
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(onSaved).not.toHaveBeenCalled();

    await act(async () => fireEvent.click(screen.getByRole("button", { name: "Save interval" })));
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.getByText("Saved.")).toBeTruthy();
    expect(onSaved).toHaveBeenCalledOnce();
  });
});
