import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, request, setSession } from "./api.js";

function respond(status, body, contentType = "application/json") {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return new Response(status === 204 ? null : text, {
    status,
    headers: { "Content-Type": contentType },
  });
}

describe("request", () => {
  let fetchMock;
  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal("fetch", fetchMock);
    localStorage.clear();
  });
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("returns the JSON body and sends the bearer token", async () => {
    setSession("tok-123", "ada");
    fetchMock.mockResolvedValue(respond(200, { items: [] }));
    await expect(request("/api/polls", { query: { status: "open", kind: "" } })).resolves.toEqual(
      { items: [] },
    );
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe("/api/polls?status=open");
    expect(init.headers.Authorization).toBe("Bearer tok-123");
  });

  it("asks for observations in buckets with from and to, raw ones with since", async () => {
    fetchMock.mockImplementation(async () => respond(200, { items: [] }));
    const range = { from: "2026-12-01T00:00:00.000Z", to: "2026-12-08T00:00:00.000Z" };
    await api.observationBuckets(4, { bucket: "1h", ...range });
    await api.observations(4, 1000, range.from);
    const [buckets, raw] = fetchMock.mock.calls.map(([url]) => new URL(url, "http://x"));
    expect(buckets.pathname).toBe("/api/devices/4/observations");
    expect(Object.fromEntries(buckets.searchParams)).toEqual({ bucket: "1h", ...range });
    expect(Object.fromEntries(raw.searchParams)).toEqual({ limit: "1000", since: range.from });
  });

  it("sends a JSON body", async () => {
    fetchMock.mockResolvedValue(respond(201, { id: 7 }));
    await api.createPoll({ title: "T", options: ["a", "b"], close_date: "2030-01-01T00:00:00Z" });
    const [, init] = fetchMock.mock.calls[0];
    expect(init.method).toBe("POST");
    expect(init.headers["Content-Type"]).toBe("application/json");
    expect(JSON.parse(init.body).title).toBe("T");
  });

  it("turns the API's error shape into an ApiError with field errors", async () => {
    fetchMock.mockResolvedValue(
      respond(422, {
        code: 422,
        status: "Unprocessable Entity",
        message: "Some fields are invalid: close_date, options",
        errors: {
          close_date: ["The date must be in the future."],
          options: { 0: ["Shorter than minimum length 1."] },
        },
      }),
    );
    const error = await request("/api/polls", { method: "POST", body: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.message).toBe("Some fields are invalid: close_date, options");
    expect(error.fieldErrors).toEqual({
      close_date: "The date must be in the future.",
      options: "Shorter than minimum length 1.",
    });
  });

  it("keeps the message of a 409 without field errors", async () => {
    fetchMock.mockResolvedValue(
      respond(409, { code: 409, status: "Conflict", message: "You already voted." }),
    );
    const error = await request("/api/polls/1/votes", { method: "POST", body: {} }).catch(
      (e) => e,
    );
    expect(error.message).toBe("You already voted.");
    expect(error.fieldErrors).toEqual({});
  });

  it("gives a readable message for a non-JSON 502", async () => {
    fetchMock.mockResolvedValue(respond(502, "<html>Bad Gateway</html>", "text/html"));
    const error = await request("/api/polls").catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(502);
    expect(error.message).toMatch(/server is unavailable \(HTTP 502\)/);
    expect(error.message).not.toMatch(/html/i);
  });

  it("gives a readable message when the network fails", async () => {
    fetchMock.mockRejectedValue(new TypeError("Failed to fetch"));
    const error = await request("/api/polls").catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/Cannot reach the server/);
  });

  it("forgets an expired token on 401", async () => {
    setSession("old", "ada");
    fetchMock.mockResolvedValue(
      respond(401, { code: 401, status: "Unauthorized", message: "The token has expired." }),
    );
    const error = await request("/api/devices").catch((e) => e);
    expect(error.message).toBe("The token has expired.");
    expect(localStorage.getItem("punctual.token")).toBeNull();
  });

  it("returns null for 204", async () => {
    fetchMock.mockResolvedValue(respond(204, ""));
    await expect(request("/api/polls/1", { method: "DELETE" })).resolves.toBeNull();
  });
});
