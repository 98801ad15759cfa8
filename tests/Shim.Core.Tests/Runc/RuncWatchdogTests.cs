using System.Diagnostics;
using Shim.Os;
using Shim.Os.Io;
using Shim.Runc;

namespace Shim.Core.Tests.Runc;

public sealed class RuncWatchdogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rcs-runc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Script(string name, string body)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [Fact]
    public async Task A_hung_runc_is_killed_at_the_deadline_and_the_error_says_so()
    {
        Reaper.Instance.Start();
        string pidFile = Path.Combine(_dir, "hung.pid");
        var runc = new RuncClient(new RuncConfig(Script("runc", $"echo $$ > {pidFile}; exec sleep 1000"), _dir, Path.Combine(_dir, "log.json")) { CallTimeout = TimeSpan.FromSeconds(1) }, new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var clock = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.KillAsync("c1", 15, all: false, TestContext.Current.CancellationToken));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
        Assert.Contains("runc kill", ex.Message, StringComparison.Ordinal);
        Assert.Contains("killed", ex.Message, StringComparison.Ordinal);
        int pid = int.Parse((await File.ReadAllTextAsync(pidFile, TestContext.Current.CancellationToken)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Directory.Exists($"/proc/{pid}"), "the hung runc is still alive");
    }

    /// <summary>Hands every call the token it got, so a test sees whether anything but the caller can cancel runc.</summary>
    private sealed class TokenRecorder : IRuncRunner
    {
        public readonly Dictionary<string, CancellationToken> Seen = [];

        public Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
        {
            Seen[args.Count > 7 ? args[7] : args[1]] = ct; // argv: runc --root r --log l --log-format json <verb> ..., or runc --version
            return Task.FromResult(new RuncResult(0, "[]"u8.ToArray(), ""));
        }
    }

    [Fact]
    public async Task Calls_that_run_hooks_or_criu_are_cancelled_only_by_their_caller_and_the_short_ones_have_the_watchdog()
    {
        var recorder = new TokenRecorder();
        var runc = new RuncClient(new RuncConfig("/bin/runc", _dir, Path.Combine(_dir, "log.json")) { CallTimeout = TimeSpan.FromMinutes(2) }, recorder);
        using var caller = new CancellationTokenSource();
        var ct = caller.Token;

        await runc.CreateAsync("c1", new CreateOptions(_dir, "p"), RuncIo.Captured, ct);
        await runc.StartAsync("c1", ct);
        await runc.DeleteAsync("c1", force: false, ct);
        await runc.CheckpointAsync("c1", new CheckpointOptions("/img", "/work"), ct);
        await runc.RestoreAsync("c1", new RestoreOptions("/img", _dir, "p"), RuncIo.Captured, ct);
        await runc.KillAsync("c1", 9, all: false, ct);
        await runc.PsAsync("c1", ct);
        await runc.PauseAsync("c1", ct);

        foreach (string verb in (string[])["create", "start", "delete", "checkpoint", "restore"])
        {
            Assert.True(recorder.Seen[verb] == ct, $"runc {verb} got a token the caller does not own (a watchdog)");
        }
        foreach (string verb in (string[])["kill", "ps", "pause"])
        {
            Assert.True(recorder.Seen[verb] != ct && recorder.Seen[verb].CanBeCanceled, $"runc {verb} has no watchdog");
        }
    }

    [Fact]
    public async Task A_failing_runc_reports_the_last_error_of_its_json_log()
    {
        Reaper.Instance.Start();
        string log = Path.Combine(_dir, "log.json");
        var runc = new RuncClient(new RuncConfig(Script("runc", $$"""echo '{"level":"error","msg":"container \"c1\" does not exist","time":"t"}' >> {{log}}; exit 1"""), _dir, log), new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.KillAsync("c1", 9, all: false, TestContext.Current.CancellationToken));
        Assert.Equal("container \"c1\" does not exist", ex.RuncMessage);
        Assert.True(ex.IsNotFound);
    }

    [Fact]
    public async Task Without_a_json_log_runcs_stderr_is_the_message()
    {
        Reaper.Instance.Start();
        var runc = new RuncClient(new RuncConfig(Script("runc", "echo 'exec: \"runc\": not found' >&2; exit 127"), _dir, Path.Combine(_dir, "none.json")), new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.PauseAsync("c1", TestContext.Current.CancellationToken));
        Assert.Equal(127, ex.ExitCode);
        Assert.Contains("not found", ex.RuncMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_runtime_binary_that_does_not_exist_is_named_in_the_error_of_the_verb()
    {
        Reaper.Instance.Start();
        string missing = Path.Combine(_dir, "no", "runc");
        var runc = new RuncClient(new RuncConfig(missing, _dir, Path.Combine(_dir, "log.json")), new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.CreateAsync("c1", new CreateOptions(_dir, Path.Combine(_dir, "pid"), null, false, false), RuncIo.Captured, TestContext.Current.CancellationToken));
        Assert.True(ex.WasNotStarted);
        Assert.False(ex.IsNotFound);
        Assert.Equal($"runc create failed: cannot execute runtime binary {missing}: No such file or directory (ENOENT)", ex.Message);
    }

    [Fact]
    public async Task A_failing_crun_is_named_and_its_json_log_is_read()
    {
        Reaper.Instance.Start();
        string log = Path.Combine(_dir, "log.json");
        // crun 1.8's own line for a kill of a container it does not know (its keys in its order)
        string line = $$"""{"msg":"error opening file `{{_dir}}/c1/status`: No such file or directory","level":"error","time":"2026-12-07T03:36:22.216358Z"}""";
        var runc = new RuncClient(new RuncConfig(Script("crun", $"echo '{line}' >> {log}; echo 'error opening file' >&2; exit 1"), _dir, log), new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.KillAsync("c1", 9, all: false, TestContext.Current.CancellationToken));
        Assert.Equal($"crun kill failed: error opening file `{_dir}/c1/status`: No such file or directory", ex.Message);
        Assert.Equal("crun", ex.Runtime);
        Assert.True(ex.IsNotFound);
    }

    [Fact]
    public async Task An_error_an_earlier_call_left_in_the_log_is_not_the_reason_of_this_one()
    {
        Reaper.Instance.Start();
        string log = Path.Combine(_dir, "log.json");
        await File.WriteAllTextAsync(log, """{"level":"error","msg":"container does not exist","time":"t"}""" + "\n", TestContext.Current.CancellationToken);
        // crun refuses an option it does not know on stderr alone, before it opens its log
        var runc = new RuncClient(new RuncConfig(Script("crun", "echo \"crun: unrecognized option '--no-subreaper'\" >&2; exit 1"), _dir, log), new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.PauseAsync("c1", TestContext.Current.CancellationToken));
        Assert.Equal("crun pause failed: crun: unrecognized option '--no-subreaper'", ex.Message);
        Assert.False(ex.IsNotFound);
    }

    [Fact]
    public async Task A_hung_runtime_is_named_by_the_watchdog()
    {
        Reaper.Instance.Start();
        var runc = new RuncClient(new RuncConfig(Script("crun", "exec sleep 1000"), _dir, Path.Combine(_dir, "log.json")) { CallTimeout = TimeSpan.FromMilliseconds(300) }, new RuncRunner(Reaper.Instance, IoLoop.Shared));
        var ex = await Assert.ThrowsAsync<RuncException>(() => runc.PsAsync("c1", TestContext.Current.CancellationToken));
        Assert.Equal("crun ps failed: no answer within 0.3 s; crun was killed", ex.Message);
    }
}
