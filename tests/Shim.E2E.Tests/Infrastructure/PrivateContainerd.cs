using System.Diagnostics;
using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>
/// A containerd of our own: root, state, sockets and log under a short temp dir, CRI off, debug
/// logging on, with dist/ first on its PATH so it finds containerd-shim-runcsharp-v2 (preceded
/// by the folder of a working criu when scripts/get-criu.sh provided one).
/// Never the system's daemon; disposal stops only what this instance started.
/// </summary>
internal sealed class PrivateContainerd : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan CleanupCallTimeout = TimeSpan.FromSeconds(15);

    private readonly Process _daemon;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _namespaces = []; // guarded by _gate
    private bool _disposed;

    private PrivateContainerd(string dir, Process daemon)
    {
        Dir = dir;
        _daemon = daemon;
    }

    /// <summary>The temp dir holding everything of this daemon (short: socket paths must fit 108 bytes).</summary>
    public string Dir { get; }

    /// <summary>containerd's grpc socket; its ttrpc socket is this plus ".ttrpc".</summary>
    public string Socket => Path.Combine(Dir, "c.sock");

    /// <summary>containerd's stdout+stderr, where shim log lines are copied too.</summary>
    public string LogPath => Path.Combine(Dir, "containerd.log");

    /// <summary>Where ctr puts its stdio FIFOs (--fifo-dir), kept out of /run/containerd/fifo.</summary>
    public string FifoDir => Path.Combine(Dir, "fifo");

    /// <summary>PID of the daemon.</summary>
    public int Pid => _daemon.Id;

    /// <summary>Bundle directory containerd creates for a task.</summary>
    public string BundleDir(string ns, string id) =>
        Path.Combine(Dir, "state", "io.containerd.runtime.v2.task", ns, id);

    /// <summary>Writes the config, starts containerd and waits (bounded) until it answers.</summary>
    public static async Task<PrivateContainerd> StartAsync(CancellationToken ct)
    {
        var dir = MakeTempDir();
        foreach (var sub in new[] { "root", "state", "opt", "fifo" }) { Directory.CreateDirectory(Path.Combine(dir, sub)); }
        var config = Path.Combine(dir, "config.toml");
        await File.WriteAllTextAsync(config, Config(dir), ct);

        var containerd = Prereqs.Which("containerd") ?? throw new InvalidOperationException("containerd not on PATH");
        var runcDir = Path.GetDirectoryName(Prereqs.Which("runc") ?? "/usr/sbin/runc")!;
        // sh only sets up the redirections, then becomes containerd (same PID): the kernel writes
        // the log file directly, so nothing here has to keep draining a pipe
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec \"$0\" --config \"$1\" >\"$2\" 2>&1 </dev/null");
        psi.ArgumentList.Add(containerd);
        psi.ArgumentList.Add(config);
        psi.ArgumentList.Add(Path.Combine(dir, "containerd.log"));
        // runc execs `criu` from PATH (inherited daemon → shim → runc): the working one goes first
        var criuDir = Prereqs.CriuDir is { } criu ? criu + ":" : "";
        psi.Environment["PATH"] = $"{criuDir}{Prereqs.DistDir}:{runcDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        var daemon = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");
        var ctrd = new PrivateContainerd(dir, daemon);
        await File.WriteAllTextAsync(Path.Combine(dir, "containerd.pid"), daemon.Id.ToString(CultureInfo.InvariantCulture), ct);

        try
        {
            var until = DateTime.UtcNow + StartTimeout;
            while (true)
            {
                if (daemon.HasExited)
                {
                    throw new InvalidOperationException($"containerd exited with {daemon.ExitCode} at start; log tail:\n{ctrd.LogTail(30)}");
                }
                if (File.Exists(ctrd.Socket))
                {
                    var v = await Command.RunAsync(Ctr, ["--address", ctrd.Socket, "version"], timeout: TimeSpan.FromSeconds(5), ct: ct);
                    if (v.ExitCode == 0) { return ctrd; }
                }
                if (DateTime.UtcNow > until)
                {
                    throw new TimeoutException($"containerd did not answer on {ctrd.Socket} within {StartTimeout.TotalSeconds} s; log tail:\n{ctrd.LogTail(30)}");
                }
                await Task.Delay(100, ct);
            }
        }
        catch
        {
            await ctrd.DisposeAsync();
            throw;
        }
    }

    private static string Ctr => Prereqs.Which("ctr") ?? "ctr";

    /// <summary>Runs <c>ctr --address &lt;sock&gt; -n &lt;ns&gt; args</c>; kills ctr after the timeout (default 60 s).</summary>
    public Task<CommandResult> CtrAsync(string ns, IEnumerable<string> args, byte[]? stdin = null, TimeSpan? timeout = null, CancellationToken ct = default)
    {
        lock (_gate) { _namespaces.Add(ns); }
        return Command.RunAsync(Ctr, ["--address", Socket, "-n", ns, .. args], stdin, timeout, ct: ct);
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

        if (!_daemon.HasExited)
        {
            var known = await Quiet(async () => (await Command.RunAsync(Ctr, ["--address", Socket, "namespaces", "ls", "-q"], timeout: CleanupCallTimeout)).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)) ?? [];
            foreach (var ns in used.Union(known))
            {
                await Quiet(() => CleanNamespaceAsync(ns));
            }
            await Quiet(() => Command.RunAsync("/bin/kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)], timeout: CleanupCallTimeout));
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try { await _daemon.WaitForExitAsync(grace.Token); }
            catch (OperationCanceledException)
            {
                notes.Add($"containerd {Pid} ignored SIGTERM for 10 s: SIGKILL");
                try { _daemon.Kill(); } catch (InvalidOperationException) { }
                await _daemon.WaitForExitAsync(CancellationToken.None);
            }
        }
        _daemon.Dispose();

        // containerd does not stop shims when it exits; ours carry "-address <our socket>"
        foreach (var pid in ProcFs.ShimPids(Socket))
        {
            notes.Add($"killed leftover shim {pid}: {string.Join(' ', ProcFs.Argv(pid) ?? [])}");
            try { using var p = Process.GetProcessById(pid); p.Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
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

    private static IEnumerable<string> SafeDirs(string dir)
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

    private static string Config(string dir) => $"""
        version = 2
        root = "{dir}/root"
        state = "{dir}/state"
        disabled_plugins = ["io.containerd.grpc.v1.cri"]

        [grpc]
          address = "{dir}/c.sock"
        [ttrpc]
          address = "{dir}/c.sock.ttrpc"
        [debug]
          address = "{dir}/debug.sock"
          level = "debug"
        [metrics]
          address = ""

        [plugins]
          [plugins."io.containerd.internal.v1.opt"]
            path = "{dir}/opt"

        """;
}
