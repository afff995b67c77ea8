"""Printer addresses in the technician's terms: `tablebox printers add` checks every form and shows the right one,
and a printer that cannot be reached says which address and the likely cause (unplugged, no permission and the
group the service needs, busy, the wrong baud rate), in `tablebox printers` and `tablebox doctor` too, never a
library's repr (issue 17, item 9)."""

from __future__ import annotations

import errno
import os
import socket
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import usb.backend.libusb0
import usb.backend.libusb1
import usb.backend.openusb
import usb.core
from escpos import printer as escpos_printer

from appliance.cli import main
from appliance.db.connection import open_connection, write_transaction
from appliance.db.printing import queue_test_page
from appliance.doctor import Mark, run_checks
from appliance.domain.printing import (
    FileAddress,
    PrinterStatus,
    SerialAddress,
    TcpAddress,
    UsbAddress,
    parse_printer_address,
)
from printers.connection import EscposLink, PrinterFault, explain_failure, link_for
from printers.worker import PrintWorker

NOBODY = 65534
ROOT = Path(__file__).resolve().parents[2]

# -- The forms ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri,address",
    [
        ("usb://04b8:0e15", UsbAddress(0x04B8, 0x0E15)),
        ("USB://04B8:0E15/SN12345", UsbAddress(0x04B8, 0x0E15, "SN12345")),
        ("tcp://192.168.1.50", TcpAddress("192.168.1.50", 9100)),
        ("tcp://kitchen-printer.local:9101", TcpAddress("kitchen-printer.local", 9101)),
        ("tcp://[fd00::50]:9100", TcpAddress("fd00::50", 9100)),
        ("serial:///dev/ttyUSB0", SerialAddress("/dev/ttyUSB0", 19200)),
        ("serial:///dev/serial/by-id/usb-1a86_USB_Serial-if00?baudrate=115200", None),
        ("file:///dev/usb/lp0", FileAddress("/dev/usb/lp0")),
    ],
)
def test_each_form_parses_and_is_shown_as_typed(uri, address):
    parsed = parse_printer_address(uri)
    if address is not None:
        assert parsed == address
    assert parse_printer_address(parsed.uri) == parsed  # the address shown is one `printers add` takes back
    if isinstance(parsed, UsbAddress):
        assert parsed.uri.startswith("usb://04b8:0e15")  # as lsusb shows the ids, never (1208, 3605)


BAD_ADDRESSES = [
    (
        "usb://zz:yy",
        "usb://zz:yy: the vendor and product ids are 4 hex digits each, as lsusb shows them, e.g. usb://04b8:0e15",
    ),
    ("usb://4b8:e15", "4 hex digits each"),
    ("usb://0000:0e15", "0000 is no vendor or product id"),
    ("usb://04b8:0e15/SN1/x", "only the printer's serial number"),
    ("usb://04b8:0e15?timeout=5", "unknown option 'timeout': this kind of address takes no ?options"),
    ("serial://", "a serial:// printer needs its device's path"),
    ("serial:///", "e.g. serial:///dev/ttyUSB0?baudrate=19200"),
    (
        "serial://dev/ttyUSB0",
        "the device's path follows three slashes (serial:// and the path, which starts with /), e.g. serial:///dev/ttyUSB0",
    ),
    ("serial://ttyUSB0", "e.g. serial:///dev/ttyUSB0"),
    ("serial:///dev/ttyUSB0?baudrate=14400", "the baud rate '14400' is not one a printer is set to (1200, 2400"),
    ("serial:///dev/ttyUSB0?baudrate=fast", "the baud rate 'fast'"),
    ("serial:///dev/ttyUSB0?baudrate=", "the baud rate ''"),
    ("serial:///dev/ttyUSB0?baud=9600", "unknown option 'baud': this kind of address takes only ?baudrate=N"),
    ("serial:///dev/ttyUSB0?baudrate=9600&baudrate=19200", "baudrate is given twice"),
    ("file://", "a file:// printer needs its device's path"),
    ("file:///dev/usb/", "names a folder, not a device"),
    ("file:///dev/usb/lp0?x=1", "takes no ?options"),
    ("tcp://", "a tcp:// address needs the printer's host"),
    ("tcp://192.168.1.50:99999", "the port '99999' is not a number from 1 to 65535"),
    ("tcp://192.168.1.50:0", "the port '0'"),
    ("tcp://192.168.1.50:ipp", "the port 'ipp'"),
    ("tcp://192.168.1.500", "'192.168.1.500' is neither an IP address nor a host name"),
    ("tcp://192.168.1.50/printer", "a tcp:// address is the printer's host and port only"),
    ("tcp://8.8.8.8:9100", "the print service reaches printers on the store's network only"),
    ("lpt://1", "unknown printer address 'lpt://'"),
    ("192.168.1.50", "a network printer's address starts with tcp://, e.g. tcp://192.168.1.50:9100"),
    ("04b8:0e15", "a USB printer's address starts with usb://, e.g. usb://04b8:0e15"),
    ("/dev/usb/lp0", "e.g. file:///dev/usb/lp0"),
    ("/dev/ttyUSB0", "e.g. serial:///dev/ttyUSB0?baudrate=19200"),
    ("usb:04b8:0e15", "the kind of address is followed by ://, e.g. usb://04b8:0e15"),
    ("serial:/dev/ttyUSB0", "e.g. serial:///dev/ttyUSB0"),
    ("tcp://192.168.1.50 :9100", "no spaces"),
    ("virtual://", "a virtual printer needs a name"),
]


@pytest.mark.parametrize("uri,message", BAD_ADDRESSES)
def test_a_wrong_address_is_refused_with_the_right_form(uri, message):
    with pytest.raises(ValueError) as refused:
        parse_printer_address(uri, resolve_virtual=lambda name: "tcp://127.0.0.1:9")
    assert message in str(refused.value)
    assert str(refused.value).startswith((uri, repr(uri)))  # the address as typed comes first


@pytest.mark.parametrize(
    "uri,message",
    [
        ("usb://zz:yy", BAD_ADDRESSES[0][1]),
        ("serial://", "serial://: a serial:// printer needs its device's path"),
        ("serial:///dev/ttyUSB0?baudrate=14400", "1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200"),
        ("tcp://192.168.1.50:99999", "receipt printers listen on 9100), e.g. tcp://192.168.1.50:9100"),
        ("file://", "e.g. file:///dev/usb/lp0"),
        ("usb://04b8:0e15?x=1", "unknown option 'x'"),
    ],
)
def test_printers_add_refuses_a_wrong_address_and_stores_nothing(settings, capsys, uri, message):
    code = main(["printers", "add", "spare", uri, "--stations", "kitchen", "--data-dir", str(settings.data_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tablebox: ") and message in err
    assert "invalid literal" not in err and "Traceback" not in err
    conn = open_connection(settings.db_path)
    assert conn.execute("SELECT count(*) FROM printers WHERE name = 'spare'").fetchone() == (0,)
    conn.close()


def test_printers_add_takes_a_usb_address_with_a_serial_number(settings, capsys):
    d = ["--data-dir", str(settings.data_dir)]
    assert main(["printers", "add", "spare", "usb://04b8:0e15/SN12345", "--stations", "kitchen", *d]) == 0
    assert "usb://04b8:0e15/SN12345" in capsys.readouterr().out


# -- Print-time causes ----------------------------------------------------------------------------------------------


def fault_of(link: EscposLink) -> PrinterFault:
    with pytest.raises(PrinterFault) as fault:
        link.status()
    link.close()
    return fault.value


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_a_missing_device_file_is_unplugged_and_never_created(tmp_path):
    device = tmp_path / "usb" / "lp0"
    fault = fault_of(EscposLink(FileAddress(str(device))))
    assert fault.status is PrinterStatus.UNPLUGGED
    assert fault.detail.startswith(f"file://{device}: there is no device {device}: not plugged in or switched off")
    tmp_path.joinpath("usb").mkdir()
    fault = fault_of(EscposLink(FileAddress(str(device))))  # python-escpos would create it: a file eating tickets
    assert fault.status is PrinterStatus.UNPLUGGED and not device.exists()


def test_a_missing_serial_device_is_unplugged(tmp_path):
    fault = fault_of(EscposLink(SerialAddress(str(tmp_path / "ttyUSB0"), 9600)))
    assert fault.status is PrinterStatus.UNPLUGGED
    assert f"serial://{tmp_path}/ttyUSB0?baudrate=9600: there is no device" in fault.detail
    assert "ls /dev/ttyUSB* /dev/ttyACM*" in fault.detail


def test_a_file_that_is_no_serial_port(tmp_path):
    device = tmp_path / "ttyS0"
    device.write_bytes(b"")
    fault = fault_of(EscposLink(SerialAddress(str(device))))
    assert fault.status is PrinterStatus.NO_ACCESS and f"{device} is not a serial port" in fault.detail


def test_a_closed_tcp_port_is_refused_and_named():
    port = closed_port()
    fault = fault_of(EscposLink(TcpAddress("127.0.0.1", port), timeout=1.0))
    assert fault.status is PrinterStatus.UNPLUGGED
    assert fault.detail.startswith(f"tcp://127.0.0.1:{port}: 127.0.0.1 refused port {port}: a printer still starting")
    assert str(fault).startswith("unplugged or switched off: tcp://127.0.0.1:")


def test_a_serial_printer_that_answers_nothing_may_have_another_baud_rate():
    """A pseudo-terminal stands in for the serial line: it takes the status queries and nothing ever answers, as
    a printer set to another baud rate reads them as noise and says nothing."""
    leader, follower = os.openpty()
    try:
        device = os.ttyname(follower)
        fault = fault_of(EscposLink(SerialAddress(device, 9600), timeout=0.1, status_timeout=0.1))
    finally:
        os.close(leader)
        os.close(follower)
    assert fault.status is PrinterStatus.NO_ANSWER
    assert fault.detail.startswith(
        f"serial://{device}?baudrate=9600: no reply to a status query at 9600 baud: switched off, or the printer "
        "is set to another baud rate (its self-test page shows it; ?baudrate=N in the address)"
    )


def test_a_silent_serial_printer_is_given_up_on_after_the_status_timeout_not_the_links():
    """The status answer is awaited status_timeout per try, on serial as on TCP: with the link's own 30 s per read,
    a silent serial printer would hold its printer's loop for 5 x 30 s."""
    leader, follower = os.openpty()
    faults: list[PrinterFault] = []
    try:
        link = EscposLink(SerialAddress(os.ttyname(follower), 9600), timeout=30, status_timeout=0.1)
        asking = threading.Thread(target=lambda: faults.append(fault_of(link)), daemon=True)
        asking.start()
        asking.join(20)  # far below 5 x 30 s, far above 5 x 0.1 s
        assert not asking.is_alive(), "still waiting for the silent printer"
    finally:
        os.close(leader)
        os.close(follower)
    assert [f.status for f in faults] == [PrinterStatus.NO_ANSWER]


def test_a_tcp_port_that_answers_nothing_is_named():
    listener = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nothing ever replies
    port = listener.getsockname()[1]
    try:
        fault = fault_of(EscposLink(TcpAddress("127.0.0.1", port), timeout=1.0, status_timeout=0.1))
    finally:
        listener.close()
    assert fault.status is PrinterStatus.NO_ANSWER
    assert fault.detail == (
        f"tcp://127.0.0.1:{port}: connected, but no reply to a status query: not an ESC/POS printer on that port?"
    )


def test_a_connection_lost_while_sending_says_where_and_why():
    """The printer closes the connection mid-job (switched off, or another program took its one connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    link = EscposLink(TcpAddress("127.0.0.1", port), timeout=1.0, status_timeout=0.1)
    link.open()
    peer, _ = listener.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()  # linger 0: a reset, as a printer switched off mid-job
    listener.close()
    with pytest.raises(PrinterFault) as fault:
        for _ in range(50):  # the reset arrives after the first write
            link.send(b"x" * 65536)
    assert fault.value.partial and fault.value.status is PrinterStatus.UNPLUGGED
    assert fault.value.detail.startswith(f"connection lost while sending: tcp://127.0.0.1:{port}: the printer closed")


def _no_permission_device(tmp_path) -> Iterator[str]:
    """A real device node the test's user may not open: as root, a pseudo-terminal (root's, mode 620) opened by
    a child running as nobody; otherwise a file with mode 000."""
    if os.geteuid() == 0:
        leader, follower = os.openpty()
        try:
            yield os.ttyname(follower)
        finally:
            os.close(leader)
            os.close(follower)
    else:
        device = tmp_path / "lp0"
        device.write_bytes(b"")
        device.chmod(0)
        yield str(device)


no_permission_device = pytest.fixture(_no_permission_device)


def open_fault(link: EscposLink) -> tuple[str, str]:
    """The link's fault on opening, as nobody when the test runs as root (root may open any device)."""
    if os.geteuid() != 0:
        with pytest.raises(PrinterFault) as fault:
            link.open()
        return fault.value.status.value, fault.value.detail
    escpos_printer.File, escpos_printer.Serial  # noqa: B018 -- loaded here: the child imports nothing
    reader, writer = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of fork() beside threads; the child only opens a file
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover -- the child
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                link.open()
                answer = "opened|"
            except PrinterFault as fault:
                answer = f"{fault.status.value}|{fault.detail}"
            os.write(writer, answer.encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    status, _, detail = answer.partition("|")
    return status, detail


def test_a_device_file_without_permission_names_group_lp(no_permission_device):
    status, detail = open_fault(EscposLink(FileAddress(no_permission_device)))
    assert status == PrinterStatus.NO_ACCESS.value
    assert detail == (
        f"file://{no_permission_device}: no permission to open {no_permission_device}: the print service's user "
        f"must be in group lp (`ls -l {no_permission_device}` shows the device's group)"
    )


def test_a_serial_device_without_permission_names_group_dialout(no_permission_device):
    status, detail = open_fault(EscposLink(SerialAddress(no_permission_device, 9600)))
    assert status == PrinterStatus.NO_ACCESS.value
    assert detail.startswith(f"serial://{no_permission_device}?baudrate=9600: no permission to open")
    assert "must be in group dialout" in detail


def test_the_groups_named_are_the_ones_the_service_gets():
    unit = (ROOT / "systemd" / "tablebox-printd.service").read_text()
    assert "SupplementaryGroups=lp dialout" in unit
    rule = (ROOT / "provision" / "udev" / "99-tablebox-printers.rules").read_text()
    assert 'GROUP="lp"' in rule


# -- USB, through pyusb and python-escpos with a stand-in for libusb ------------------------------------------------


class FakeLibusb(usb.backend.IBackend):
    """libusb as pyusb's libusb1 backend reports it: devices from the bus, and open failing with EACCES where the
    box has no permission (LIBUSB_ERROR_ACCESS becomes USBError errno 13 in usb/backend/libusb1.py)."""

    def __init__(self, devices: list[SimpleNamespace]) -> None:
        self.devices = devices

    def enumerate_devices(self):
        yield from self.devices

    def get_device_descriptor(self, dev):
        return SimpleNamespace(
            bLength=18,
            bDescriptorType=1,
            bcdUSB=0x200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=64,
            idVendor=dev.vid,
            idProduct=dev.pid,
            bcdDevice=0x100,
            iManufacturer=0,
            iProduct=0,
            iSerialNumber=3,
            bNumConfigurations=1,
            address=4,
            bus=1,
            port_number=1,
            port_numbers=(1,),
            speed=None,
        )

    def open_device(self, dev):
        if dev.denied:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        raise usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


FakeLibusb.__module__ = "usb.backend.libusb1"  # python-escpos detaches the kernel driver only on libusb1


@pytest.fixture
def usb_bus(monkeypatch):
    devices: list[SimpleNamespace] = []
    monkeypatch.setattr(usb.backend.libusb1, "get_backend", lambda *a, **k: FakeLibusb(devices))
    return devices


def test_a_usb_printer_not_connected_is_named_by_its_ids(usb_bus):
    usb_bus.append(SimpleNamespace(vid=0x046D, pid=0xC52B, denied=False))  # a keyboard's receiver
    fault = fault_of(EscposLink(parse_printer_address("usb://04b8:0e15")))
    assert fault.status is PrinterStatus.UNPLUGGED
    assert fault.detail == (
        "usb://04b8:0e15: no USB device 04b8:0e15 is connected: not plugged in or switched off (`lsusb` lists what is)"
    )


def test_a_usb_printer_with_another_serial_number(usb_bus):
    fault = fault_of(EscposLink(parse_printer_address("usb://04b8:0e15/SN12345")))
    assert fault.status is PrinterStatus.UNPLUGGED
    assert fault.detail.startswith(
        "usb://04b8:0e15/SN12345: no USB device 04b8:0e15 with serial number SN12345 is connected"
    )
    assert "<function" not in fault.detail and "1208" not in fault.detail and "lambda" not in fault.detail


def test_a_usb_printer_without_permission_names_group_lp_and_the_udev_rule(usb_bus):
    usb_bus.append(SimpleNamespace(vid=0x04B8, pid=0x0E15, denied=True))
    fault = fault_of(EscposLink(parse_printer_address("usb://04b8:0e15")))
    assert fault.status is PrinterStatus.NO_ACCESS
    assert fault.detail.startswith("usb://04b8:0e15: no permission to open USB device 04b8:0e15: the print service's")
    assert "group lp" in fault.detail and "99-tablebox-printers.rules" in fault.detail
    assert str(fault).startswith("set-up fault: the box cannot open it: usb://04b8:0e15")


def test_a_usb_serial_number_unreadable_without_permission(usb_bus):
    """pyusb reads each device's serial number to match it; without permission it finds no language id and raises
    ValueError, which python-escpos lets through."""
    usb_bus.append(SimpleNamespace(vid=0x04B8, pid=0x0E15, denied=True))
    fault = fault_of(EscposLink(parse_printer_address("usb://04b8:0e15/SN12345")))
    assert fault.status is PrinterStatus.NO_ACCESS
    assert "no permission to read the serial numbers of the USB devices 04b8:0e15" in fault.detail


def test_a_box_without_libusb(monkeypatch):
    for backend in (usb.backend.libusb1, usb.backend.openusb, usb.backend.libusb0):
        monkeypatch.setattr(backend, "get_backend", lambda *a, **k: None)
    fault = fault_of(EscposLink(parse_printer_address("usb://04b8:0e15")))
    assert (fault.status, fault.detail) == (
        PrinterStatus.NO_ACCESS,
        "usb://04b8:0e15: libusb is not installed on this box (apt install libusb-1.0-0)",
    )


@pytest.mark.parametrize(
    "address,exc,status,words",
    [
        (TcpAddress("192.168.1.50"), socket.gaierror(-2, "Name or service not known"), "no_access", "give its IP"),
        (TcpAddress("192.168.1.50"), OSError(errno.EHOSTUNREACH, "No route to host"), "unplugged", "no route to"),
        (TcpAddress("192.168.1.50"), TimeoutError("timed out"), "unplugged", "no answer from 192.168.1.50 within 5 s"),
        (TcpAddress("192.168.1.50"), ConnectionResetError(errno.ECONNRESET, "reset"), "unplugged", "one connection"),
        (TcpAddress("192.168.1.50"), PermissionError(errno.EPERM, "Operation"), "no_access", "store's network only"),
        (SerialAddress("/dev/ttyUSB0"), OSError(errno.EBUSY, "busy"), "no_access", "in use by another program"),
        (UsbAddress(0x04B8, 0x0E15), usb.core.USBError("Resource busy", -6, errno.EBUSY), "no_access", "CUPS"),
        (
            UsbAddress(0x04B8, 0x0E15),
            usb.core.USBTimeoutError("timed out", -7, errno.ETIMEDOUT),
            "unplugged",
            "in time",
        ),
        (UsbAddress(0x04B8, 0x0E15), usb.core.USBError("No device", -4, errno.ENODEV), "unplugged", "went away"),
        (FileAddress("/dev/usb/lp0"), OSError(errno.EIO, "Input/output error"), "unplugged", "input/output error"),
    ],
)
def test_each_cause_in_words(address, exc, status, words):
    """Causes a test cannot make happen for real here (a busy port, a dead route, systemd's IPAddressDeny=)."""
    got_status, detail = explain_failure(address, exc, timeout=5.0)
    assert got_status.value == status and words in detail and detail.startswith(address.uri)


# -- Where the technician reads it ----------------------------------------------------------------------------------


def wait_for_status(conn, names: set[str], timeout: float = 10.0) -> dict[str, tuple[str, str]]:
    stop, seen = threading.Event(), {}
    for _ in range(int(timeout / 0.02)):
        seen = {n: (s, d) for n, s, d in conn.execute("SELECT name, status, detail FROM printer_status")}
        if names <= seen.keys() and all(seen[n][0] != "ready" for n in names):
            break
        stop.wait(0.02)
    return seen


def test_the_worker_records_the_cause_shown_by_printers_and_doctor(settings, tmp_path, capsys):
    """A real worker: the kitchen printer's device file is missing, the bar printer's port is closed, and a third
    printer carries an address saved before the forms were checked; the worker keeps running for the others."""
    port = closed_port()
    device = tmp_path / "lp0"
    conn = open_connection(settings.db_path)
    with write_transaction(conn):
        conn.execute("UPDATE printers SET uri = ? WHERE name = 'kitchen'", (f"file://{device}",))
        conn.execute("UPDATE printers SET uri = ? WHERE name = 'bar'", (f"tcp://127.0.0.1:{port}",))
        conn.execute(
            "INSERT INTO printers (name, uri, paper_mm, text_mode, stations, copies, cutter, buzzer)"
            " VALUES ('old', 'serial://', 80, 'gb18030', '[]', 1, 1, 0)"
        )
        for name in ("kitchen", "bar", "old"):
            queue_test_page(conn, name)
    with PrintWorker(settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05):
        seen = wait_for_status(conn, {"kitchen", "bar", "old"})
    conn.close()
    assert seen["kitchen"] == (
        "unplugged",
        f"file://{device}: there is no device {device}: not plugged in or switched off (`ls /dev/usb/` shows what is there)",
    )
    assert seen["bar"][0] == "unplugged" and seen["bar"][1].startswith(f"tcp://127.0.0.1:{port}: 127.0.0.1 refused")
    assert seen["old"] == (
        "no_access",
        "the address is not valid: serial://: a serial:// printer needs its device's path (ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ shows them), e.g. serial:///dev/ttyUSB0?baudrate=19200",
    )

    assert main(["printers", "--data-dir", str(settings.data_dir)]) == 0
    out = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert f"unplugged or switched off (file://{device}: there is no device" in out["kitchen"]
    assert f"refused port {port}" in out["bar"]
    assert "set-up fault: the box cannot open it (the address is not valid: serial://" in out["old"]

    checks = {c.name: c for c in run_checks(settings, unit_states=lambda units: dict.fromkeys(units, "active"))}
    assert checks["printer kitchen"].mark is Mark.FAIL
    assert f"there is no device {device}" in checks["printer kitchen"].detail
    assert checks["printer kitchen"].fix.startswith("plug the printer in and switch it on")
    assert checks["printer old"].mark is Mark.FAIL
    assert checks["printer old"].detail.startswith("its address is not valid: serial://: a serial:// printer needs")
    assert checks["printer old"].fix.startswith("`tablebox printers add old ADDRESS")


def test_a_link_for_an_invalid_stored_address_is_a_set_up_fault():
    link = link_for("usb://zz:yy")
    with pytest.raises(PrinterFault) as fault:
        link.status()
    assert fault.value.status is PrinterStatus.NO_ACCESS
    assert fault.value.detail.startswith("the address is not valid: usb://zz:yy: the vendor and product ids are")
    assert isinstance(link_for("tcp://127.0.0.1:9100"), EscposLink)
