import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate } from "react-router-dom";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { OnlineBadge, OnOff, PausedBadge } from "../components/DeviceBadges.jsx";
import { ErrorMessage, FieldError, Loading } from "../components/Feedback.jsx";
import { InputField } from "../components/InputField.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { formatAgo } from "../format.js";
import { useNow } from "../hooks.js";

export default function Devices() {
  const { signedIn } = useAuth();
  const now = useNow(1000);
  // Owner-only: nothing is fetched signed out.
  const {
    data,
    error,
    isPending: loading,
  } = useQuery({
    queryKey: ["devices"],
    queryFn: () => api.devices(),
    enabled: signedIn,
    refetchInterval: 5000,
  });

  return (
    <section>
      <h1>Devices</h1>
      <NeedSignIn what="see and register your devices" />
      {signedIn && (
        <>
          {loading && !data && <Loading what="Loading devices" />}
          <ErrorMessage error={error} />
          {data && data.items.length === 0 && <p className="muted">No devices yet.</p>}
          {data && data.items.length > 0 && (
            <table data-testid="devices-table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Location</th>
                  <th scope="col">Vendor</th>
                  <th scope="col">State</th>
                  <th scope="col">Last seen</th>
                  <th scope="col">On/off</th>
                  <th scope="col">Interval</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((device) => (
                  <tr key={device.id}>
                    <td>
                      <Link to={`/devices/${device.id}`}>{device.name}</Link>
                    </td>
                    <td>{device.location}</td>
                    <td>
                      {device.vendor} · {device.vendor_id}
                    </td>
                    <td>
                      <OnlineBadge online={device.online} />
                      <PausedBadge paused={device.paused} />
                    </td>
                    <td>{formatAgo(device.last_seen_at, now)}</td>
                    <td>
                      <OnOff isOn={device.is_on} />
                    </td>
                    <td>{device.interval} s</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <RegisterDevice />
        </>
      )}
    </section>
  );
}

function RegisterDevice() {
  const navigate = useNavigate();
  const [form, setForm] = useState({
    name: "",
    location: "",
    vendor: "simulated",
    vendor_id: "",
    interval: "60",
  });
  const queryClient = useQueryClient();
  const register = useMutation({
    mutationFn: (device) => api.createDevice(device),
    onSuccess: (device) => {
      queryClient.invalidateQueries({ queryKey: ["devices"] });
      queryClient.invalidateQueries({ queryKey: ["locations"] });
      navigate(`/devices/${device.id}`);
    },
  });
  const { error } = register;
  // Busy from the click until the device's page shows (not only while the request runs).
  const busy = register.isPending || register.isSuccess;
  const set = (key) => (e) => setForm((f) => ({ ...f, [key]: e.target.value }));

  function submit(event) {
    event.preventDefault();
    const interval = form.interval.trim() === "" ? undefined : Number(form.interval);
    register.mutate({ ...form, interval });
  }

  const fields = error?.fieldErrors || {};
  const input = (key, label, props = {}) => (
    <InputField
      id={`device-${key}`}
      label={label}
      value={form[key]}
      onChange={set(key)}
      error={fields[key]}
      {...props}
    />
  );

  return (
    <form onSubmit={submit} noValidate className="panel">
      <h2>Register a device</h2>
      <div className="grid">
        {input("name", "Name")}
        {input("location", "Location")}
        <div className="field">
          <label htmlFor="device-vendor">Vendor</label>
          <select id="device-vendor" value={form.vendor} onChange={set("vendor")}>
            <option value="simulated">simulated</option>
            <option value="http">http</option>
          </select>
          <FieldError id="device-vendor-error" error={fields.vendor} />
        </div>
        {input("vendor_id", "Vendor id", {
          placeholder: form.vendor === "simulated" ? "thermostat-1, plug-2…" : "",
        })}
        {input("interval", "Interval (seconds)", { type: "number", min: 1 })}
      </div>
      <ErrorMessage error={error} />
      <button type="submit" disabled={busy}>
        {busy ? "Registering…" : "Register device"}
      </button>
    </form>
  );
}
