using System.Diagnostics;
using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>How to start a <see cref="PrivateContainerd"/>.</summary>
/// <param name="Line">containerd line (default: RCS_CONTAINERD, else 1.6 = the system's).</param>
/// <param name="Cri">Enable the CRI plugin with handlers <c>runc</c> (stock) and <c>runcsharp</c> (ours).</param>
/// <param name="PathFirst">A folder put first on the daemon's PATH, which its shims inherit: a test's
/// own <c>runc</c> (see <see cref="RuncWrapper"/>) or shim found there before the real one.</param>
/// <param name="Environment">Variables added to the daemon's environment; containerd passes its
/// environment on to the shims it starts.</param>
internal sealed record ContainerdOptions(
    ContainerdLine? Line = null, bool Cri = false, string? PathFirst = null, IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>
/// A containerd of our own: root, state, sockets and log under a short temp dir, CRI off unless
/// asked for, debug logging on, with dist/ first on its PATH so it finds
/// containerd-shim-runcsharp-v2, then the line's runc and its own binaries (so
/// io.containerd.runc.v2 is that line's stock shim). Any containerd line (1.6 system, 1.7 / 2.1
/// fetched by scripts/fetch-versions.sh); the config format follows the line (version 2 for 1.x,
/// version 3 for 2.x). A working criu's folder (scripts/get-criu.sh) goes first on the PATH.
/// Never the system's daemon; disposal stops only what this instance started.
/// </summary>
internal sealed class PrivateContainerd : IAsyncDisposable
{
    /// <summary>Our CRI runtime handler (runtime_type io.containerd.runcsharp.v2).</summary>
    public const string OurCriHandler = "runcsharp";

    /// <summary>The runtime under test as containerd 2.x's pod sandboxer (sandboxer = "shim"): pods without a pause container.</summary>
    public const string SandboxerCriHandler = "runcsharp-pod";

    /// <summary>As <see cref="SandboxerCriHandler"/>, with a CNI network that fails every pod (2.x only).</summary>
    public const string SandboxerFailingCniHandler = "runcsharp-pod-failing-cni";

    /// <summary>The stock CRI runtime handler (runtime_type io.containerd.runc.v2).</summary>
    public const string StockCriHandler = "runc";

    /// <summary>The pod sandbox ("pause") image CRI uses, imported from <see cref="OciImage"/>.</summary>
    public const string SandboxImage = OciImage.PauseName;

    /// <summary>The address the tap CNI network gives a pod with its own network namespace.</summary>
    public const string PodIp = "192.0.2.10";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan CleanupCallTimeout = TimeSpan.FromSeconds(15);

    private Process _daemon;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _namespaces = []; // guarded by _gate
    private readonly List<string> _podNetns = [];      // guarded by _gate
    private bool _skipCriCleanup;
    private bool _disposed;

    private readonly ContainerdOptions _options;

    private PrivateContainerd(string dir, Process daemon, ContainerdLine line, ContainerdOptions options)
    {
        Dir = dir;
        _daemon = daemon;
        Line = line;
        Cri = options.Cri;
        _options = options;
    }

    /// <summary>The containerd line this daemon is.</summary>
    public ContainerdLine Line { get; }

    /// <summary>True when the CRI plugin is on.</summary>
    public bool Cri { get; }

    /// <summary>True when CRI has a CNI network (sid's tap plugin) for pods with their own netns.</summary>
    public bool HasPodNetwork => Cri && Line.CniBinDir is not null;

    /// <summary>Cgroup parent for CRI pods of this daemon (unique; removed at disposal).</summary>
    public string CgroupParent => "/" + Path.GetFileName(Dir);

    /// <summary>
    /// Remembers a pod network namespace CRI made for a test (/var/run/netns/cni-…): if CRI
    /// cannot remove it, disposal unmounts and deletes it after the daemon is gone.
    /// </summary>
    public void TrackPodNetns(string path)
    {
        lock (_gate) { _podNetns.Add(path); }
    }

    /// <summary>
    /// Remembers a namespace another client (a test's dockerd) puts containers in: disposal cleans
    /// it and removes runc's state dir and cgroup parent of it, as for the namespaces ctr used.
    /// </summary>
    public void TrackNamespace(string ns)
    {
        lock (_gate) { _namespaces.Add(ns); }
    }

    /// <summary>CRI already hung on a pod: disposal goes straight to stopping the daemon.</summary>
    public void SkipCriCleanup() => _skipCriCleanup = true;

    /// <summary>runc root of the stock CRI handler (its [options] Root).</summary>
    public string StockRuncRoot => Path.Combine(Dir, "runc");

    /// <summary>The temp dir holding everything of this daemon (short: socket paths must fit 108 bytes).</summary>
    public string Dir { get; }

    /// <summary>containerd's grpc socket; its ttrpc socket is this plus ".ttrpc".</summary>
    public string Socket => Path.Combine(Dir, "c.sock");

    /// <summary>containerd's stdout+stderr, where shim log lines are copied too.</summary>
    public string LogPath => Path.Combine(Dir, "containerd.log");

    /// <summary>Where ctr puts its stdio FIFOs (--fifo-dir), kept out of /run/containerd/fifo.</summary>
    public string FifoDir => Path.Combine(Dir, "fifo");

    /// <summary>
    /// First folder on the daemon's PATH (empty unless a test puts a shim there, see
    /// <see cref="WrappedShim"/>): containerd finds a runtime's shim binary on its PATH.
    /// </summary>
    public string ShimDir => Path.Combine(Dir, "shims");

    /// <summary>PID of the daemon.</summary>
    public int Pid => _daemon.Id;

    /// <summary>Bundle directory containerd creates for a task.</summary>
    public string BundleDir(string ns, string id) =>
        Path.Combine(Dir, "state", "io.containerd.runtime.v2.task", ns, id);

    /// <summary>Writes the config, starts containerd (the selected line, CRI off) and waits (bounded) until it answers.</summary>
    public static Task<PrivateContainerd> StartAsync(CancellationToken ct) => StartAsync(new ContainerdOptions(), ct);

    /// <summary>Writes the config, starts containerd and waits (bounded) until it answers.</summary>
    public static async Task<PrivateContainerd> StartAsync(ContainerdOptions options, CancellationToken ct)
    {
        var line = options.Line ?? ContainerdLines.Current;
        var dir = MakeTempDir();
        foreach (var sub in new[] { "root", "state", "opt", "fifo", "cni", "image-verifier", "pods", "shims" }) { Directory.CreateDirectory(Path.Combine(dir, sub)); }
        var config = Path.Combine(dir, "config.toml");
        await File.WriteAllTextAsync(config, ContainerdConfig.Render(dir, line, options.Cri), ct);
        if (options.Cri && line.CniBinDir is not null)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "cni", "10-rcs-tap.conflist"), ContainerdConfig.TapConflist(PodIp), ct);
            Directory.CreateDirectory(Path.Combine(dir, "cni-failing"));
            await File.WriteAllTextAsync(Path.Combine(dir, "cni-failing", "10-rcs-fail.conflist"), ContainerdConfig.FailingConflist, ct);
            Directory.CreateDirectory(Path.Combine(dir, "cni-bin"));
            string plugin = Path.Combine(dir, "cni-bin", "rcs-fail");
            await File.WriteAllTextAsync(plugin, ContainerdConfig.FailingCniPlugin, ct);
            File.SetUnixFileMode(plugin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        var ctrd = new PrivateContainerd(dir, Launch(dir, line, options), line, options);
        try
        {
            await ctrd.WaitUntilServingAsync(ct);
            return ctrd;
        }
        catch
        {
            await ctrd.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Stops the daemon by its PID (SIGTERM, as systemd would) and starts it again on the same state;
    /// shims keep running. The processes <paramref name="killBeforeStart"/> get SIGKILL while it is down.
    /// </summary>
    public async Task RestartAsync(CancellationToken ct, params IReadOnlyList<int> killBeforeStart)
    {
        await Command.RunAsync("/bin/kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)], timeout: CleanupCallTimeout, ct: ct);
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(20)))
        {
            await _daemon.WaitForExitAsync(grace.Token);
        }
        foreach (var pid in killBeforeStart)
        {
            // something happens while containerd is down: its shim must report it once containerd is back
            await Command.RunAsync("/bin/kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], timeout: CleanupCallTimeout, ct: ct);
        }
        _daemon.Dispose();
        _daemon = Launch(Dir, Line, _options);
        await WaitUntilServingAsync(ct);
    }

    private static Process Launch(string dir, ContainerdLine line, ContainerdOptions options)
    {
        var runcDir = Path.GetDirectoryName(line.RuncPath ?? Prereqs.Which("runc") ?? "/usr/sbin/runc")!;
        // sh only sets up the redirections, then becomes containerd (same PID): the kernel writes
        // the log file directly, so nothing here has to keep draining a pipe (appended across restarts)
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" --config \"$1\" >>\"$2\" 2>&1 </dev/null");
        psi.ArgumentList.Add(line.Containerd);
        psi.ArgumentList.Add(Path.Combine(dir, "config.toml"));
        psi.ArgumentList.Add(Path.Combine(dir, "containerd.log"));
        // the shims inherit this PATH: a test's wrapped shims (ShimDir), ours from dist/, runc and the line's stock shim before /usr/bin;
        // runc execs `criu` from PATH (daemon → shim → runc), so the working one goes first
        var criuDir = Prereqs.CriuDir is { } criu ? criu + ":" : "";
        var first = options.PathFirst is { } f ? f + ":" : "";
        psi.Environment["PATH"] = $"{dir}/shims:{first}{criuDir}{Prereqs.DistDir}:{runcDir}:{line.BinDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (var (key, value) in options.Environment ?? new Dictionary<string, string>()) { psi.Environment[key] = value; }
        var daemon = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");
        File.WriteAllText(Path.Combine(dir, "containerd.pid"), daemon.Id.ToString(CultureInfo.InvariantCulture));
        return daemon;
    }

    private async Task WaitUntilServingAsync(CancellationToken ct)
    {
        var until = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (_daemon.HasExited)
            {
                throw new InvalidOperationException($"containerd exited with {_daemon.ExitCode} at start; log tail:\n{LogTail(30)}");
            }
            if (File.Exists(Socket))
            {
                var v = await Command.RunAsync(Ctr, ["--address", Socket, "version"], timeout: TimeSpan.FromSeconds(5), ct: ct);
                if (v.ExitCode == 0) { return; }
            }
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"containerd did not answer on {Socket} within {StartTimeout.TotalSeconds} s; log tail:\n{LogTail(30)}");
            }
            await Task.Delay(100, ct);
        }
    }

    /// <summary>The ctr of this daemon's line.</summary>
    public string Ctr => Line.Ctr;

    /// <summary>Runs <c>ctr --address &lt;sock&gt; -n &lt;ns&gt; args</c>; kills ctr after the timeout (default 60 s).</summary>
    public Task<CommandResult> CtrAsync(string ns, IEnumerable<string> args, byte[]? stdin = null, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        lock (_gate) { _namespaces.Add(ns); }
        return Command.RunAsync(Ctr, ["--address", Socket, "-n", ns, .. args], stdin, timeout, ct: ct);
    }

    /// <summary>Starts <c>ctr --address &lt;sock&gt; -n &lt;ns&gt; args</c> and leaves it running for the caller to read.</summary>
    public RunningCommand StartCtr(string ns, IEnumerable<string> args)
    {
        lock (_gate) { _namespaces.Add(ns); }
        return RunningCommand.Start(Ctr, ["--address", Socket, "-n", ns, .. args]);
    }

    /// <summary>Same as <see cref="CtrAsync"/> with the arguments inline.</summary>
    public Task<CommandResult> CtrAsync(string ns, params string[] args) => CtrAsync(ns, (IEnumerable<string>)args);

    /// <summary>Starts <c>ctr events</c> in the background (for topics of all namespaces).</summary>
    public EventStream StartEvents()
    {
        var psi = new ProcessStartInfo(Ctr) { UseShellExecute = false };
        foreach (var a in new[] { "--address", Socket, "events" }) { psi.ArgumentList.Add(a); }
        return new EventStream(psi);
    }

    /// <summary>The last lines of the daemon log (shim log lines included).</summary>
    public string LogTail(int lines)
    {
        try
        {
            using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(fs);
            var all = r.ReadToEnd().Split('\n');
            return string.Join('\n', all.TakeLast(lines));
        }
        catch (IOException e) { return $"(no log: {e.Message})"; }
    }

    /// <summary>The whole daemon log so far.</summary>
    public string ReadLog()
    {
        using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var r = new StreamReader(fs);
        return r.ReadToEnd();
    }

    /// <summary>
    /// Kills and deletes every task and container, stops the daemon by its PID, kills leftover
    /// shims of this daemon by PID, unmounts whatever is left under <see cref="Dir"/> and
    /// removes it. Runs even after a failed test; never throws.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) { return; }
        _disposed = true;
        var notes = new List<string>();
        string[] used;
        lock (_gate) { used = [.. _namespaces]; }

        if (!_daemon.HasExited && Cri && !_skipCriCleanup)
        {
            // pods first: CRI tears down their netns (/var/run/netns/cni-*) and CNI state
            await Quiet(() => Shim.E2E.Tests.Cri.CriCleanup.RemoveAllPodsAsync(Socket, notes, CleanupCallTimeout));
        }
        if (!_daemon.HasExited)
        {
            var known = await Quiet(async () => (await Command.RunAsync(Ctr, ["--address", Socket, "namespaces", "ls", "-q"], timeout: CleanupCallTimeout)).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) ?? [];
            foreach (var ns in used.Union(known))
            {
                await Quiet(() => CleanNamespaceAsync(ns));
            }
            await Daemons.StopAsync(_daemon, "containerd", TimeSpan.FromSeconds(10), notes);
            // a test's own ctr (TerminalTests runs it under script(1)) is not counted above: the test
            // namespaces the daemon knows get their state dir and cgroup parent removed too
            used = [.. used.Union(known.Where(ns => ns.StartsWith(E2ETest.NamespacePrefix, StringComparison.Ordinal)))];
        }
        _daemon.Dispose();

        // containerd does not stop shims when it exits; ours carry "-address <our socket>"
        foreach (var pid in ProcFs.ShimPids(Socket))
        {
            notes.Add($"killed leftover shim {pid}: {string.Join(' ', ProcFs.Argv(pid) ?? [])}");
            try { using var p = Process.GetProcessById(pid); p.Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }

        string[] netns;
        lock (_gate) { netns = [.. _podNetns]; }
        foreach (var ns in netns.Where(File.Exists))
        {
            notes.Add($"removed leftover pod netns {ns}");
            await Quiet(() => Command.RunAsync("umount", ["-l", ns], timeout: CleanupCallTimeout));
            try { File.Delete(ns); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }

        foreach (var mp in ProcFs.MountsUnder(Dir))
        {
            notes.Add($"unmounted leftover {mp}");
            await Quiet(() => Command.RunAsync("umount", ["-l", mp], timeout: CleanupCallTimeout));
        }

        // runc leaves an empty per-namespace state dir and cgroup parent; our namespaces are unique
        foreach (var ns in used)
        {
            TryRemoveEmptyDir(Path.Combine("/run/containerd/runc", ns));
            foreach (var controller in SafeDirs("/sys/fs/cgroup")) { TryRemoveEmptyDir(Path.Combine(controller, ns)); }
        }
        if (Cri)
        {
            // k8s.io is shared by every CRI daemon: only an empty runc state dir goes; the pods'
            // cgroup parent is ours alone
            TryRemoveEmptyDir(Path.Combine("/run/containerd/runc", "k8s.io"));
            foreach (var controller in SafeDirs("/sys/fs/cgroup")) { TryRemoveEmptyDir(controller + CgroupParent); }
        }

        if (ProcFs.MountsUnder(Dir).Count == 0)
        {
            try { Directory.Delete(Dir, recursive: true); }
            catch (IOException e) { notes.Add($"could not remove {Dir}: {e.Message}"); }
            catch (UnauthorizedAccessException e) { notes.Add($"could not remove {Dir}: {e.Message}"); }
        }
        else { notes.Add($"left {Dir} in place: still mounted below it"); }

        if (notes.Count > 0)
        {
            TestContext.Current.TestOutputHelper?.WriteLine("cleanup: " + string.Join("\ncleanup: ", notes));
        }
    }

    private async Task CleanNamespaceAsync(string ns)
    {
        async Task<string[]> List(params string[] args) =>
            (await Command.RunAsync(Ctr, ["--address", Socket, "-n", ns, .. args], timeout: CleanupCallTimeout)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Task<CommandResult> Do(params string[] args) =>
            Command.RunAsync(Ctr, ["--address", Socket, "-n", ns, .. args], timeout: CleanupCallTimeout);

        foreach (var t in await List("tasks", "ls", "-q")) { await Quiet(() => Do("tasks", "kill", "-s", "SIGKILL", t)); }
        foreach (var t in await List("tasks", "ls", "-q")) { await Quiet(() => Do("tasks", "delete", "-f", t)); }
        foreach (var c in await List("containers", "ls", "-q")) { await Quiet(() => Do("containers", "rm", c)); }
        foreach (var s in (await List("snapshots", "ls")).Skip(1))
        {
            await Quiet(() => Do("snapshots", "rm", s.Split(' ', 2)[0]));
        }
    }

    private static async Task<T?> Quiet<T>(Func<Task<T>> f)
    {
        try { return await f(); }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            TestContext.Current.TestOutputHelper?.WriteLine($"cleanup step failed: {e.Message}");
            return default;
        }
    }

    private static async Task Quiet(Func<Task> f) => await Quiet(async () => { await f(); return 0; });

    private static string[] SafeDirs(string dir)
    {
        try { return Directory.GetDirectories(dir); }
        catch (IOException) { return []; }
    }

    private static void TryRemoveEmptyDir(string dir)
    {
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFiles(dir).Any() && !Directory.EnumerateDirectories(dir).Any()) { Directory.Delete(dir); }
            else if (dir.StartsWith("/sys/fs/cgroup/", StringComparison.Ordinal) && Directory.Exists(dir)
                     && !Directory.EnumerateDirectories(dir).Any())
            {
                Directory.Delete(dir);   // cgroup dirs always "contain" their control files; rmdir works when no child cgroup is left
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string MakeTempDir()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var name = "rcs-" + new string(Enumerable.Range(0, 6).Select(_ => alphabet[Random.Shared.Next(alphabet.Length)]).ToArray());
            var path = Path.Combine("/tmp", name);
            if (Directory.Exists(path)) { continue; }
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return path;
        }
        throw new IOException("could not create a temp dir under /tmp");
    }
}
