import { describe, expect, it } from "vitest";
import { bandKey, toBandSeries, toSeries } from "./ObservationChart.jsx";

describe("toBandSeries", () => {
  it("pivots buckets into rows by start: each attribute's mean and its min–max band", () => {
    const { data, attributes } = toBandSeries(
      [
        { attribute: "humidity", start: "2026-12-01T10:00:00.000Z", min: 40, max: 44, mean: 42, count: 2 },
        { attribute: "temperature", start: "2026-12-01T11:00:00.000Z", min: 20, max: 21, mean: 20.5, count: 2 },
        { attribute: "temperature", start: "2026-12-01T10:00:00.000Z", min: 19, max: 22, mean: 20, count: 3 },
      ],
      { temperature: "°C" },
    );
    expect(data).toEqual([
      {
        t: Date.UTC(2026, 11, 1, 10),
        humidity: 42,
        [bandKey("humidity")]: [40, 44],
        temperature: 20,
        [bandKey("temperature")]: [19, 22],
      },
      { t: Date.UTC(2026, 11, 1, 11), temperature: 20.5, [bandKey("temperature")]: [20, 21] },
    ]);
    expect(attributes).toEqual([
      { name: "humidity", units: "" },
      { name: "temperature", units: "°C" },
    ]);
  });

  it("leaves raw readings as they were: one column per attribute, oldest row first", () => {
    const { data } = toSeries([
      { name: "temperature", value: 21, units: "°C", valid_at: "2026-12-01T11:59:00.000Z" },
      { name: "temperature", value: 20, units: "°C", valid_at: "2026-12-01T11:58:00.000Z" },
    ]);
    expect(data.map((row) => row.temperature)).toEqual([20, 21]);
  });
});
