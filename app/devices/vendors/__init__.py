"""Vendor clients, by the name stored on a device."""

from flask import current_app

from app.devices.vendors.base import Vendor, VendorError


def vendor_names() -> list[str]:
    return ["simulated", "http"]


def get_vendor(name: str) -> Vendor:
    if name == "simulated":
        from app.devices.vendors.simulated import SimulatedVendor

        return SimulatedVendor()
    if name == "http":
        from app.devices.vendors.http import HttpVendor

        config = current_app.config
        return HttpVendor(
            base_url=config["VENDOR_HTTP_BASE_URL"],
            connect_timeout=config["VENDOR_HTTP_CONNECT_TIMEOUT"],
            read_timeout=config["VENDOR_HTTP_READ_TIMEOUT"],
            retries=config["VENDOR_HTTP_RETRIES"],
        )
    raise VendorError(f"unknown vendor {name!r}")
