// The one module that talks HTTP to the Punctual API.
// Every failure becomes an ApiError with a readable `message` and, for invalid fields,
// `fieldErrors` ({field: "first message"}), so pages can show them next to their inputs.

const TOKEN_KEY = "punctual.token";
const USER_KEY = "punctual.user";

export class ApiError extends Error {
  constructor(message, { status = 0, fieldErrors = {}, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fieldErrors = fieldErrors;
    this.body = body;
  }
}

export function getToken() {
  return globalThis.localStorage?.getItem(TOKEN_KEY) || null;
}

export function getUsername() {
  return globalThis.localStorage?.getItem(USER_KEY) || null;
}

export function setSession(token, username) {
  if (token) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, username);
  } else {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  }
}

/** Flatten {"field": ["msg", ...]} (possibly nested: {"options": {"0": ["msg"]}}) into strings. */
export function flattenErrors(errors) {
  const out = {};
  if (!errors || typeof errors !== "object") return out;
  for (const [field, value] of Object.entries(errors)) {
    out[field] = firstMessage(value);
  }
  return out;
}

function firstMessage(value) {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map(firstMessage).filter(Boolean).join(" ");
  if (value && typeof value === "object") {
    return Object.values(value).map(firstMessage).filter(Boolean).join(" ");
  }
  return String(value ?? "");
}

function statusText(status) {
  if (status === 502 || status === 503 || status === 504) {
    return `The server is unavailable (HTTP ${status}). Is Punctual running? Try again shortly.`;
  }
  return `The server answered with an unexpected error (HTTP ${status}).`;
}

/**
 * Call the API. `path` starts with /api or /healthz. `body` is sent as JSON.
 * Resolves to the parsed JSON (or null for 204); rejects with an ApiError.
 */
export async function request(path, { method = "GET", body, query, signal } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }

  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(
      "Cannot reach the server. Check your connection and that Punctual is running.",
      { status: 0 },
    );
  }

  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) {
    if (data === null && text) {
      throw new ApiError("The server sent a response that is not JSON.", {
        status: response.status,
      });
    }
    return data;
  }
  if (data && typeof data === "object" && data.message) {
    if (response.status === 401 && token) {
      // An expired or revoked token: forget it so the user can sign in again.
      setSession(null);
      window.dispatchEvent(new Event("punctual:signed-out"));
    }
    throw new ApiError(data.message, {
      status: response.status,
      fieldErrors: flattenErrors(data.errors),
      body: data,
    });
  }
  throw new ApiError(statusText(response.status), { status: response.status });
}

export const api = {
  register: (username, password) =>
    request("/api/auth/register", { method: "POST", body: { username, password } }),
  token: (username, password) =>
    request("/api/auth/token", { method: "POST", body: { username, password } }),

  polls: (status, page = 1) =>
    request("/api/polls", { query: { status, page, per_page: 50 } }),
  poll: (id) => request(`/api/polls/${id}`),
  createPoll: (poll) => request("/api/polls", { method: "POST", body: poll }),
  vote: (id, optionId) =>
    request(`/api/polls/${id}/votes`, { method: "POST", body: { option_id: optionId } }),
  updatePoll: (id, changes) => request(`/api/polls/${id}`, { method: "PATCH", body: changes }),
  closePoll: (id) => request(`/api/polls/${id}/close`, { method: "POST" }),
  deletePoll: (id) => request(`/api/polls/${id}`, { method: "DELETE" }),

  devices: (query) => request("/api/devices", { query: { per_page: 100, ...query } }),
  device: (id) => request(`/api/devices/${id}`),
  createDevice: (device) => request("/api/devices", { method: "POST", body: device }),
  updateDevice: (id, changes) =>
    request(`/api/devices/${id}`, { method: "PATCH", body: changes }),
  deleteDevice: (id) => request(`/api/devices/${id}`, { method: "DELETE" }),
  observations: (id, limit = 500, since) =>
    request(`/api/devices/${id}/observations`, { query: { limit, since } }),
  // Min, max, mean and count per attribute and bucket ("1m", "5m", "1h", "1d") in [from, to).
  observationBuckets: (id, { bucket, from, to }) =>
    request(`/api/devices/${id}/observations`, { query: { bucket, from, to } }),
  pollDevice: (id) => request(`/api/devices/${id}/poll`, { method: "POST" }),
  command: (id, isOn) =>
    request(`/api/devices/${id}/commands`, { method: "POST", body: { is_on: isOn } }),

  schedules: (deviceId) => request(`/api/devices/${deviceId}/schedules`),
  createSchedule: (deviceId, schedule) =>
    request(`/api/devices/${deviceId}/schedules`, { method: "POST", body: schedule }),
  updateSchedule: (deviceId, id, changes) =>
    request(`/api/devices/${deviceId}/schedules/${id}`, { method: "PATCH", body: changes }),
  deleteSchedule: (deviceId, id) =>
    request(`/api/devices/${deviceId}/schedules/${id}`, { method: "DELETE" }),

  locations: () => request("/api/locations"),
  refreshLocation: (location) =>
    request(`/api/locations/${encodeURIComponent(location)}/refresh`, { method: "POST" }),
  locationSummary: (location) =>
    request(`/api/locations/${encodeURIComponent(location)}/summary`),

  jobs: (query) => request("/api/jobs", { query }),
  job: (id) => request(`/api/jobs/${id}`),
  cancelJob: (id) => request(`/api/jobs/${id}`, { method: "DELETE" }),
};
