"""DICOM node figures: a 128^3 CT series (head-and-neck phantom, 3.5 x 3.5 x 2.5 mm) sent
with storescu to `isoline listen`, contoured, and the RT-STRUCT stored by C-STORE in a real
PACS (Orthanc) on 127.0.0.1. node_ct_to_rtstruct_seconds runs from the end of the last
C-STORE (storescu returns after the association release, which completes the series 2 s
later, the release settle time: --complete-on-release) until Orthanc's REST API lists the
RT-STRUCT; with the default
quiet-time completion add the quiet time (30 s). node_store_128_slices_seconds is the
storescu run itself."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

KEYS = ["node_ct_to_rtstruct_seconds", "node_store_128_slices_seconds"]

ORTHANC = "/usr/sbin/Orthanc"


def _port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _wait(fn, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if fn():
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False


def _rtstructs(http):
    req = urllib.request.Request(f"http://127.0.0.1:{http}/tools/find", method="POST",
                                 data=b'{"Level":"Instance","Query":{"Modality":"RTSTRUCT"}}')
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def run(ctx):
    if not (os.path.exists(ORTHANC) and shutil.which("storescu") and ctx.isoline.exists()):
        return {k: None for k in KEYS}
    work = ctx.work / "node"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ph = work / "phantom"
    ctx.run(ctx.isoline, "phantom", "hn", "--size", "128,128,128", "--spacing", "3.5,3.5,2.5", "--out", ph, "--quiet")
    ct = work / "ct"
    ct.mkdir()
    for f in sorted((ph / "dicom").glob("CT*.dcm")):
        shutil.copy(f, ct / f.name)
    env = dict(os.environ, TCP_NODELAY="1")
    http, dicom, node = _port(), _port(), _port()
    (work / "orthanc.json").write_text(json.dumps({
        "Name": "bench", "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "index"),
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "Plugins": [], "StableAge": 2}))
    procs = []
    try:
        procs.append(subprocess.Popen([ORTHANC, str(work / "orthanc.json")], env=env,
                                      stdout=open(work / "orthanc.log", "w"), stderr=subprocess.STDOUT))
        if not _wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{http}/system", timeout=1), 20):
            raise RuntimeError("Orthanc did not start")
        procs.append(subprocess.Popen(
            [str(ctx.isoline), "listen", "--port", str(node), "--aet", "ISOLINE", "--work", str(work / "node"),
             "--forward", f"ORTHANC@127.0.0.1:{dicom}", "--complete-on-release", "--quiet-time", "300"],
            env=env, stdout=open(work / "node.log", "w"), stderr=subprocess.STDOUT))
        echo = ["echoscu", "-aec", "ISOLINE", "127.0.0.1", str(node)]
        if not _wait(lambda: subprocess.run(echo, env=env, capture_output=True).returncode == 0, 30):
            raise RuntimeError("node did not start")
        t0 = time.perf_counter()
        subprocess.run(["storescu", "-aet", "SCANNER", "-aec", "ISOLINE", "+sd", "127.0.0.1", str(node), str(ct)],
                       env=env, check=True, capture_output=True)
        t1 = time.perf_counter()
        if not _wait(lambda: len(_rtstructs(http)) > 0, 300):
            raise RuntimeError("no RT-STRUCT in Orthanc after 300 s; see " + str(work / "node.log"))
        t2 = time.perf_counter()
        return {"node_ct_to_rtstruct_seconds": round(t2 - t1, 2),
                "node_store_128_slices_seconds": round(t1 - t0, 2)}
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
