"""Artifact integrity: caches follow their inputs' content, one writer per stage, messages that are
true and commands that can be pasted, OS errors and signals as messages, flags checked up front."""

import errno
import os
import shlex
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from worldmodels.cli import parse, report_errors
from worldmodels.config import Run, make_stage_config
from worldmodels.io.artifacts import StageError, exclusive
from worldmodels.io.data import save_rollout


def run_for(root, **kw):
    return Run(env="carracing", preset="tiny", data_dir=root, seed=0, workers=1, **kw)


def series_arrays(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][:] for k in f}, dict(f.attrs)


def test_stage3_cache_follows_the_rollouts_content(run_copy, tmp_path, rng, fake_rollout):
    """Replace one rollout (same name), delete one and re-collect it (other content), add one, and
    damage a cached encoding: series.h5 equals a fresh encode of the rollouts now on disk."""
    import shutil

    from worldmodels.stages.encode import encode_rollouts

    roll = run_copy / "rollouts"
    before, _ = series_arrays(run_copy / "series" / "series.h5")
    obs, *rest = fake_rollout(rng, T=40)
    save_rollout(roll / "s0_e000001.npz", obs, *rest)  # replaced under the same name
    (roll / "s0_e000002.npz").unlink()
    save_rollout(roll / "s0_e000002.npz", *fake_rollout(rng, T=33))  # deleted, then re-collected
    save_rollout(roll / "s0_e000004.npz", *fake_rollout(rng, T=25))  # a new one
    part = next((run_copy / "series" / "parts").rglob("s0_e000000.npz"))
    part.write_bytes(b"damaged")  # a bad cache entry is made again, not a failure
    encode_rollouts(run_for(run_copy), make_stage_config("encode", "carracing", "tiny"))
    after, attrs = series_arrays(run_copy / "series" / "series.h5")

    fresh = tmp_path / "fresh"
    shutil.copytree(roll, fresh / "rollouts")
    shutil.copytree(run_copy / "vision", fresh / "vision")
    encode_rollouts(run_for(fresh), make_stage_config("encode", "carracing", "tiny"))
    expected, fresh_attrs = series_arrays(fresh / "series" / "series.h5")
    assert after.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(after[k], expected[k], err_msg=k)
    assert attrs["fingerprint"] == fresh_attrs["fingerprint"]
    assert after["episode_starts"][-1] == 40 + 40 + 33 + 40 + 25  # five episodes, as on disk now
    assert not np.array_equal(after["mu"][40:80], before["mu"][40:80])  # episode 1 was re-encoded


def test_a_second_writer_is_refused_naming_the_first(run_copy, capsys):
    """While another live process runs stage 4 on a directory, stage 4 there refuses to start and names
    it; once that process is killed (SIGKILL: no cleanup), the lock is free."""
    from worldmodels.stages.train_rnn import train_rnn

    code = (
        "import sys, time; from worldmodels.io.artifacts import exclusive\n"
        "with exclusive(sys.argv[1], 'memory', 'python 04_train_rnn.py (the other run)'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(run_copy)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        cfg = make_stage_config("memory", "carracing", "tiny", {"steps": 10})
        with pytest.raises(StageError, match=rf"another process is already running memory .*pid {holder.pid}"):
            train_rnn(run_for(run_copy), cfg)
    finally:
        holder.kill()
        holder.wait()
    with exclusive(run_copy, "memory"):  # a killed holder leaves nothing stuck
        pass
    assert not list(run_copy.glob(".lock-*"))


def test_suggested_commands_are_exact_and_can_be_pasted(run_copy, tmp_path):
    """A message's command repeats the flags that matter, quoted: pasting it parses to the same run,
    and running it fixes what the message was about."""
    import shutil

    from worldmodels.stages.encode import encode_rollouts
    from worldmodels.stages.train_rnn import train_rnn

    spaced = tmp_path / "a dir with spaces" / "run"
    shutil.copytree(run_copy, spaced, symlinks=True)
    (spaced / "series" / "series.h5").unlink()
    run = Run("carracing", "tiny", spaced, 7, 1, argv=("--preset", "tiny", "--data-dir", str(spaced), "--seed", "7"))
    with pytest.raises(StageError) as e:
        train_rnn(run, make_stage_config("memory", "carracing", "tiny"))
    cmd = str(e.value).split("`")[1]
    argv = shlex.split(cmd)
    assert argv[:2] == ["python", "03_generate_rnn_data.py"]
    pasted, cfg, _ = parse("encode", None, argv[2:])
    assert (pasted.data_dir, pasted.seed, pasted.preset, pasted.env) == (spaced, 7, "tiny", "carracing")
    encode_rollouts(pasted, cfg)  # following the advice fixes it
    assert (spaced / "series" / "series.h5").exists()

    # A stale artifact's fix is the command recorded with it, every flag included.
    from worldmodels.io.artifacts import fix_hint

    vision_cmd = shlex.split(fix_hint("vision", run))
    assert vision_cmd[1] == "02_train_vae.py" and "--epochs" in vision_cmd  # the override it was made with
    again, vcfg, _ = parse("vision", None, vision_cmd[2:])
    assert again.data_dir == spaced and vcfg.epochs == 1  # where the run is now, with its own settings


def test_nan_message_is_true_when_no_checkpoint_exists(tmp_path):
    from worldmodels.io.checkpoints import check_finite

    with pytest.raises(StageError, match="No checkpoint was written yet"):
        check_finite({"loss": float("nan")}, "rnn step 10", tmp_path / "checkpoint.npz")
    (tmp_path / "checkpoint.npz").write_bytes(b"x")
    with pytest.raises(StageError, match="last good checkpoint .* is kept"):
        check_finite({"loss": float("inf")}, "rnn step 20", tmp_path / "checkpoint.npz")


@pytest.mark.parametrize(
    "code, words, status",
    [
        (errno.EROFS, "read-only", 1),
        (errno.EACCES, "permission denied", 1),
        (errno.ENOENT, "missing", 1),
        (errno.ENOSPC, "disk is full", 1),
    ],
)
def test_os_errors_are_messages_not_tracebacks(code, words, status, capsys):
    def body():
        raise OSError(code, os.strerror(code), "/data/x/vision/checkpoint.npz")

    assert report_errors(body) == status
    err = capsys.readouterr().err
    assert words in err and "/data/x/vision/checkpoint.npz" in err and "rerun the same command" in err
    assert "Traceback" not in err


def test_an_unwritable_directory_fails_before_any_work(tmp_path, monkeypatch):
    """Checked with a simulated read-only file system (the suite may run as root, which ignores modes)."""
    from pathlib import Path

    from worldmodels.io.artifacts import ensure_writable
    from worldmodels.stages.collect import generate_data

    def read_only(self, data):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(StageError, match="cannot write to .*Read-only file system"):
        ensure_writable(tmp_path / "out")
    with pytest.raises(StageError, match="cannot write to"):
        generate_data(run_for(tmp_path / "run"), make_stage_config("collect", "carracing", "tiny"))
    assert not (tmp_path / "run" / "rollouts").exists()  # refused before anything was collected


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seed", "-1"], "--seed must be in [0, 2^32), got -1"),
        (["--kl-tolerance", "-0.5"], "--kl-tolerance must be >= 0, got -0.5"),
        (["--epochs", "0"], "--epochs must be positive, got 0"),
        (["--learning-rate=-1e-3"], "--learning-rate must be positive, got -0.001"),
    ],
)
def test_flags_are_checked_before_work_with_one_wording(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        parse("vision", None, argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_tool_flags_use_the_same_wording(capsys):
    from worldmodels.tools.evaluate import main as evaluate_main
    from worldmodels.tools.play import main as play_main

    for main, argv, message in [
        (evaluate_main, ["--episodes", "0"], "--episodes must be positive, got 0"),
        (evaluate_main, ["--seed-offset", "-5"], "--seed-offset is the first env seed"),
        (play_main, ["--fps", "0"], "--fps must be positive, got 0"),
        (play_main, ["--temperature", "-1"], "--temperature must be >= 0, got -1.0"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def _wait_for(predicate, timeout=120):
    t0 = time.time()
    while not predicate():
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.2)


@pytest.mark.slow  # runs a stage as a subprocess and signals it
@pytest.mark.parametrize("sig, status, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signalled_stage_says_what_was_kept_and_resumes(run_copy, scripts, sig, status, name):
    """A stage signalled mid-run says what was kept and how to resume (no traceback), exits 128+n,
    and the same command then finishes the work."""
    import shutil

    shutil.rmtree(run_copy / "vision")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, str(scripts.root / "02_train_vae.py"), "--preset", "tiny", "--data-dir", str(run_copy)]
    cmd += ["--epochs", "400", "--workers", "1"]
    with open(run_copy.parent / "err.txt", "w+") as err:
        # A shell's background jobs (CI, nohup) inherit SIGINT ignored; a terminal's Ctrl-C is not: restore it.
        p = subprocess.Popen(
            cmd,
            cwd=scripts.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            _wait_for(lambda: (run_copy / "vision" / "checkpoint.npz").exists())
            p.send_signal(sig)
            assert p.wait(timeout=120) == status
        finally:
            p.kill()
            p.wait()
        err.seek(0)
        text = err.read()
    assert f"interrupted ({name})" in text and "rerun the same command to resume" in text, text[-2000:]
    assert "Traceback" not in text
    assert not list(run_copy.glob(".lock-*")) and not list((run_copy / "vision").glob(".tmp*"))
    done = scripts.run_cmd([*cmd[:-4], "--epochs", "3", "--workers", "1"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stderr


def test_v_refuses_rollouts_whose_content_changed_under_it(run_copy, rng, fake_rollout):
    """Rollouts replaced by others of the same names and sizes: rerunning stage 2 does not call the old
    V finished for them, it says they changed and what to do."""
    from worldmodels.stages.train_vae import train_vae

    roll = sorted((run_copy / "rollouts").glob("*.npz"))[0]
    with np.load(roll) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["reward"] = arrays["reward"] + 1.0  # same shapes, dtypes and size on disk, other content
    np.savez_compressed(roll.with_suffix(""), **arrays)
    before = (run_copy / "vision" / "checkpoint.npz").read_bytes()
    cfg = make_stage_config("vision", "carracing", "tiny", {"epochs": 1})
    # Refused either way: by the content digest, or (when the size changed too) by the names-and-sizes one.
    with pytest.raises(StageError, match="changed since .* was trained on them|trained with other settings"):
        train_vae(run_for(run_copy), cfg)
    assert (run_copy / "vision" / "checkpoint.npz").read_bytes() == before


def test_a_rollout_digest_follows_content_not_bytes(tmp_path, rng, fake_rollout):
    """The same episode saved again (new timestamps in the zip) keeps its digest; other content does not."""
    from worldmodels.io.data import rollout_digest

    arrays = fake_rollout(rng, T=10)
    save_rollout(tmp_path / "a.npz", *arrays)
    first = rollout_digest(tmp_path / "a.npz")
    time.sleep(2.1)  # zip timestamps have a 2-second resolution
    save_rollout(tmp_path / "a.npz", *arrays)
    assert rollout_digest(tmp_path / "a.npz") == first
    obs, action, reward, term, trunc = arrays
    save_rollout(tmp_path / "a.npz", obs, action, reward + 1, term, trunc)
    assert rollout_digest(tmp_path / "a.npz") != first
