import { describe, expect, it } from "vitest";
import { cronFor, describeCron, formatZoned, zoneNames } from "./schedules.js";

describe("schedule rules", () => {
  it("writes a time and weekdays as cron, and reads it back in words", () => {
    expect(cronFor("07:00", [5, 1, 2, 3, 4])).toBe("0 7 * * 1,2,3,4,5");
    expect(cronFor("23:05", [0, 1, 2, 3, 4, 5, 6])).toBe("5 23 * * *");
    expect(describeCron("0 7 * * 1,2,3,4,5")).toBe("07:00 on Mon, Tue, Wed, Thu, Fri");
    expect(describeCron("30 6 * * 6,0")).toBe("06:30 on Sat, Sun");
    expect(describeCron("5 23 * * *")).toBe("23:05 every day");
    expect(describeCron("*/15 * * * *")).toBe("*/15 * * * *");
  });

  it("shows a local time with its offset, and lists zones with the browser's", () => {
    expect(formatZoned("2027-03-28T03:00:00+02:00")).toBe("2027-03-28 03:00 (UTC+02:00)");
    expect(zoneNames("Europe/Paris")).toContain("Europe/Paris");
    expect(zoneNames("Etc/Unlisted")[0]).toBe("Etc/Unlisted");
  });
});
