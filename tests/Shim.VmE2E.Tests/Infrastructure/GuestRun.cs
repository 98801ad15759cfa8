using System.Diagnostics;
using System.Globalization;

namespace Shim.VmE2E.Tests;

/// <summary>One check's outcome as the guest wrote it to results.tsv.</summary>
internal sealed record CheckResult(string Line, string Id, bool Passed, string Detail);

/// <summary>
/// One boot of the cgroup v2 guest (scripts/vm/run.sh) running guest/checks.sh for the containerd
/// lines 1.6 and 2.1 through the runtime under test; the guest's results.tsv is read back here so
/// each test asserts one check and a failure names it.
/// </summary>
public abstract class GuestRun : IAsyncLifetime
{
    /// <summary>The containerd lines every guest runs, in this order.</summary>
    public static readonly string[] Lines = ["1.6", "2.1"];

    /// <summary>
    /// The runtime binaries the checks run with on every line, in this order (RCS_VM_BINARIES):
    /// runc from containerd's PATH, then crun as the runc option BinaryName. crun refuses hybrid
    /// cgroups, so these guests are where it is tested.
    /// </summary>
    public static readonly string[] Binaries = ["runc", "crun"];

    /// <summary>Every line with every binary, for theories over both.</summary>
    public static TheoryData<string, string> LinesAndBinaries()
    {
        var data = new TheoryData<string, string>();
        foreach (var line in Lines)
        {
            foreach (var binary in Binaries) { data.Add(line, binary); }
        }
        return data;
    }

    // TCG is slow (boot 6-25 s, `ctr run` ~1.3 s, a fork+exec 40-80x the host's): generous, but
    // bounded so a hung guest fails the class instead of the CI job; 18 min per binary (both lines)
    private static readonly TimeSpan ChecksTimeoutPerBinary = TimeSpan.FromMinutes(18);

    private readonly Dictionary<(string Line, string Id), CheckResult> _results = [];
    private string _output = "";
    private string? _failure;
    private string? _logs;

    /// <summary>"plain" (a shell as PID 1, cgroup2 mounted) or "systemd" (systemd as PID 1).</summary>
    protected abstract string Mode { get; }

    /// <summary>What checks.sh runs on each line (RCS_VM_SUITE): "checks" (the cgroup v2 checks), or "oom-loop"; "package" runs package.sh, "rootless" rootless.sh.</summary>
    protected virtual string Suite => "checks";

    /// <summary>The binaries checks.sh runs each line with (RCS_VM_BINARIES): both for the checks, runc alone for the OOM loop.</summary>
    protected virtual IReadOnlyList<string> SuiteBinaries => Suite == "checks" ? Binaries : ["runc"];

    // RCS_VM_BINARIES set on the host narrows a local run (the tests of a binary left out fail as "did not run")
    private string[] RunBinaries =>
        Environment.GetEnvironmentVariable("RCS_VM_BINARIES") is { Length: > 0 } b
            ? b.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            : [.. SuiteBinaries];

    /// <summary>The script of guest/ the guest runs, with the repo as its first argument.</summary>
    protected virtual string Script => "checks.sh";

    /// <summary>The script's arguments after the repo (checks.sh: the containerd lines); prepared on the host before the boot.</summary>
    protected virtual Task<IReadOnlyList<string>> ScriptArgumentsAsync() => Task.FromResult<IReadOnlyList<string>>(Lines);

    /// <summary>Boot to power-off, at most.</summary>
    protected virtual TimeSpan Timeout => ChecksTimeoutPerBinary * RunBinaries.Length;

    /// <summary>Seconds from start to power-off of the guest.</summary>
    public double Seconds { get; private set; }

    public async ValueTask InitializeAsync()
    {
        if (VmPrereqs.Missing().Count > 0) { return; }   // each test skips (or fails under CI) with the reason
        _failure = Suite is "checks" or "package" ? await CriTool.EnsurePublishedAsync() : null;   // the oom loop and the rootless guests run no CRI pod
        IReadOnlyList<string> scriptArgs;
        try
        {
            scriptArgs = await ScriptArgumentsAsync();
        }
        catch (InvalidOperationException ex)
        {
            _failure = ex.Message;   // each test fails naming it
            return;
        }
        var outDir = Directory.CreateTempSubdirectory($"rcs-vm-{Mode}-{Suite}-").FullName;
        try
        {
            var repo = VmPrereqs.RepoRoot;
            var psi = new ProcessStartInfo(Path.Combine(repo, "scripts", "vm", "run.sh"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = repo,
            };
            if (Mode == "systemd") { psi.ArgumentList.Add("--systemd"); }
            foreach (var a in new[] { "-t", ((int)Timeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "--out", outDir, "--",
                                      "bash", Path.Combine(repo, "tests", "Shim.VmE2E.Tests", "guest", Script), repo })
            {
                psi.ArgumentList.Add(a);
            }
            foreach (var l in scriptArgs) { psi.ArgumentList.Add(l); }
            psi.Environment["RCS_VM_PASS"] = "RCS_E2E_RUNTIME RCS_VERSIONS_DIR RCS_VM_CRI RCS_VM_SUITE RCS_VM_OOM_LOOPS RCS_VM_OOM_PARALLEL RCS_VM_BINARIES";
            // RCS_VM_BINARIES set on the host narrows a local run (the tests of a binary left out fail as "did not run")
            psi.Environment["RCS_VM_BINARIES"] = string.Join(' ', RunBinaries);
            psi.Environment["RCS_VM_SUITE"] = Suite;
            psi.Environment["RCS_VM_CRI"] = CriTool.Binary;
            psi.Environment["RCS_E2E_RUNTIME"] = VmPrereqs.Runtime;

            var watch = Stopwatch.StartNew();
            using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start scripts/vm/run.sh");
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            // run.sh enforces the timeout itself (qemu under `timeout`); this is the backstop
            using var cts = new CancellationTokenSource(Timeout + TimeSpan.FromMinutes(1));
            try { await p.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { p.Kill(entireProcessTree: true); await p.WaitForExitAsync(CancellationToken.None); }
            Seconds = watch.Elapsed.TotalSeconds;
            _output = (await stdout) + (await stderr);
            if (p.ExitCode != 0) { _failure = $"scripts/vm/run.sh ({Mode}) exited {p.ExitCode} after {Seconds:F0} s"; }
            else if (_failure is not null) { _failure = "rcs-cri: " + _failure; }

            var tsv = Path.Combine(outDir, "results.tsv");
            if (File.Exists(tsv))
            {
                foreach (var row in await File.ReadAllLinesAsync(tsv, CancellationToken.None))
                {
                    var f = row.Split('\t');
                    if (f.Length >= 4) { _results[(f[0], f[1])] = new CheckResult(f[0], f[1], f[2] == "PASS", f[3]); }
                }
            }
            else
            {
                _failure ??= $"the {Mode} guest wrote no results.tsv";
            }
            TestContext.Current.SendDiagnosticMessage($"{Mode} guest: {_results.Count} results in {Seconds:F0} s");
        }
        finally
        {
            // the guest's logs (containerd, events, metrics) stay for a failure's post-mortem
            if (_failure is null && _results.Values.All(r => r.Passed)) { Directory.Delete(outDir, recursive: true); }
            else { _logs = outDir; }
        }
    }

    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Asserts that check <paramref name="id"/> passed on containerd <paramref name="line"/> with
    /// runtime binary <paramref name="binary"/> (checks.sh records crun's results under "LINE-crun").
    /// </summary>
    internal void AssertPassed(string line, string id, string binary = "runc")
    {
        VmPrereqs.RequireOrSkip();
        var key = binary == "runc" ? line : $"{line}-{binary}";
        if (_results.TryGetValue((key, id), out var r))
        {
            Assert.True(r.Passed, $"[{Mode} guest, containerd {line}, {VmPrereqs.Runtime}, {binary}] {id}: {r.Detail} (guest logs: {_logs})");
            return;
        }
        var setup = _results.TryGetValue((key, "setup"), out var s) ? $"setup: {s.Detail}" : "no setup result";
        Assert.Fail($"[{Mode} guest, containerd {line}, {binary}] check {id} did not run ({_failure ?? "the guest ended normally"}; {setup}; guest logs: {_logs}); guest output (tail):\n{Tail(_output, 40)}");
    }

    /// <summary>Check <paramref name="id"/> on <paramref name="line"/> as the guest wrote it, for a test that records a figure instead of asserting it.</summary>
    internal CheckResult Recorded(string line, string id)
    {
        VmPrereqs.RequireOrSkip();
        Assert.True(_results.TryGetValue((line, id), out var r),
            $"[{Mode} guest, containerd {line}] check {id} did not run ({_failure ?? "the guest ended normally"}; guest logs: {_logs}); guest output (tail):\n{Tail(_output, 40)}");
        return r;
    }

    private static string Tail(string text, int lines)
    {
        var all = text.Split('\n');
        return string.Join('\n', all[Math.Max(0, all.Length - lines)..]);
    }
}

/// <summary>The guest with a shell as PID 1 and cgroup2 mounted by hand (cgroupfs driver).</summary>
public sealed class PlainGuest : GuestRun
{
    protected override string Mode => "plain";
}

/// <summary>The guest with systemd as PID 1 (runc's systemd cgroup driver, over D-Bus).</summary>
public sealed class SystemdGuest : GuestRun
{
    protected override string Mode => "systemd";
}

/// <summary>The systemd guest running the OOM loop (RCS_VM_SUITE=oom-loop) instead of the checks.</summary>
public sealed class SystemdOomLoopGuest : GuestRun
{
    protected override string Mode => "systemd";

    protected override string Suite => "oom-loop";

    // 200 containers and more under TCG, where a `ctr run` to its exit and removal takes 5-20 s
    protected override TimeSpan Timeout => TimeSpan.FromMinutes(45);
}
