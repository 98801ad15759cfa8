using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Shim.E2E.Tests;

/// <summary>
/// A dockerd of our own (sid's Docker 28 from scripts/fetch-versions.sh) on a test's private
/// containerd: own data root, exec root, pidfile, socket and log under a short temp dir, containers
/// in the test's containerd namespace, no networking set up on the host (--iptables=false,
/// --ip6tables=false, --bridge=none, --ip-forward=false, --userland-proxy=false: containers run
/// with --network none), the vfs graph driver (works on any filesystem, copies the small busybox
/// image per container), its own cgroup parent. daemon.json names the runtime under test as a shim
/// v2 runtime (<c>"runtimeType": "io.containerd.runcsharp.v2"</c>, what Docker ≥ 23 accepts), so
/// <c>docker run --runtime <see cref="RuntimeName"/></c> has containerd start that shim. Never the
/// system's daemon; disposal removes its containers, stops it by its PID and removes everything,
/// including the plugin socket dir dockerd always creates (/run/docker/plugins, fixed in Docker)
/// when it was not there before. Dispose it before the containerd it uses.
/// </summary>
internal sealed class PrivateDocker : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan CleanupCallTimeout = TimeSpan.FromSeconds(30);

    // dockerd creates this at start whatever its exec root (Docker's plugin discovery dir)
    private const string RunDocker = "/run/docker";

    private readonly Process _daemon;
    private readonly string _bin;
    private readonly bool _madeRunDocker;
    private bool _disposed;

    private PrivateDocker(string dir, string bin, Process daemon, bool madeRunDocker)
    {
        Dir = dir;
        _bin = bin;
        _daemon = daemon;
        _madeRunDocker = madeRunDocker;
    }

    /// <summary>Docker's name of the runtime under test (the daemon.json key; "runc" is Docker's own default).</summary>
    public static string RuntimeName => Prereqs.IsStockRuntime ? "stock-runc-v2" : "runcsharp";

    /// <summary>The temp dir holding everything of this daemon.</summary>
    public string Dir { get; }

    /// <summary>dockerd's API socket.</summary>
    public string Socket => Path.Combine(Dir, "d.sock");

    /// <summary>dockerd's stdout+stderr.</summary>
    public string LogPath => Path.Combine(Dir, "dockerd.log");

    /// <summary>PID of dockerd.</summary>
    public int Pid => _daemon.Id;

    /// <summary>The cgroup parent of this daemon's containers (unique; removed at disposal).</summary>
    public string CgroupParent => "/" + Path.GetFileName(Dir);

    /// <summary>Writes daemon.json, starts dockerd on <paramref name="ctrd"/> (namespace <paramref name="ns"/>) and waits (bounded) until it answers.</summary>
    public static async Task<PrivateDocker> StartAsync(PrivateContainerd ctrd, string ns, CancellationToken ct)
    {
        var bin = Prereqs.RequireDockerOrSkip();
        ctrd.TrackNamespace(ns);
        ctrd.TrackNamespace(ns + "-plugins");
        var dir = MakeTempDir();
        foreach (var sub in new[] { "data", "exec", "cli" }) { Directory.CreateDirectory(Path.Combine(dir, sub)); }
        var config = new JsonObject
        {
            ["runtimes"] = new JsonObject { [RuntimeName] = new JsonObject { ["runtimeType"] = Prereqs.Runtime } },
        };
        await File.WriteAllTextAsync(Path.Combine(dir, "daemon.json"), config.ToJsonString(), ct);

        var runcDir = Path.GetDirectoryName(ctrd.Line.RuncPath ?? Prereqs.Which("runc") ?? "/usr/sbin/runc")!;
        // sh only sets up the redirections, then becomes dockerd (same PID)
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var a in new[] { "-c", "exec \"$0\" \"$@\" >>\"$LOG\" 2>&1 </dev/null", Path.Combine(bin, "dockerd"),
                     "--config-file", Path.Combine(dir, "daemon.json"),
                     "--data-root", Path.Combine(dir, "data"),
                     "--exec-root", Path.Combine(dir, "exec"),
                     "--pidfile", Path.Combine(dir, "dockerd.pid"),
                     "-H", "unix://" + Path.Combine(dir, "d.sock"),
                     "--containerd", ctrd.Socket,
                     "--containerd-namespace", ns,
                     "--containerd-plugins-namespace", ns + "-plugins",
                     "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--userland-proxy=false",
                     "--storage-driver", "vfs",
                     "--cgroup-parent", "/" + Path.GetFileName(dir) })
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["LOG"] = Path.Combine(dir, "dockerd.log");
        // dockerd reports (and execs for `docker info`) the runc on its PATH: the one the shims get
        psi.Environment["PATH"] = $"{runcDir}:{ctrd.Line.BinDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        bool madeRunDocker = !Directory.Exists(RunDocker);
        var daemon = Process.Start(psi) ?? throw new InvalidOperationException("could not start dockerd");

        var docker = new PrivateDocker(dir, bin, daemon, madeRunDocker);
        try
        {
            await docker.WaitUntilServingAsync(ct);
            return docker;
        }
        catch
        {
            await docker.DisposeAsync();
            throw;
        }
    }

    private async Task WaitUntilServingAsync(CancellationToken ct)
    {
        var until = DateTime.UtcNow + StartTimeout;
        while (true)
        {
            if (_daemon.HasExited)
            {
                throw new InvalidOperationException($"dockerd exited with {_daemon.ExitCode} at start; log tail:\n{LogTail(30)}");
            }
            if (File.Exists(Socket))
            {
                var v = await DockerAsync(["version", "--format", "{{.Server.Version}}"], timeout: TimeSpan.FromSeconds(10), ct: ct);
                if (v.ExitCode == 0) { return; }
            }
            if (DateTime.UtcNow > until)
            {
                throw new TimeoutException($"dockerd did not answer on {Socket} within {StartTimeout.TotalSeconds} s; log tail:\n{LogTail(30)}");
            }
            await Task.Delay(100, ct);
        }
    }

    /// <summary>Runs <c>docker -H unix://&lt;sock&gt; args</c> (client config in the temp dir); kills it after the timeout (default 60 s).</summary>
    public Task<CommandResult> DockerAsync(IReadOnlyList<string> args, byte[]? stdin = null, TimeSpan? timeout = null, CancellationToken ct = default) =>
        Command.RunAsync(Path.Combine(_bin, "docker"), ["-H", "unix://" + Socket, .. args], stdin, timeout,
            new Dictionary<string, string> { ["DOCKER_CONFIG"] = Path.Combine(Dir, "cli") }, ct);

    /// <summary>Loads the busybox image (<see cref="OciImage.Name"/>) with <c>docker load</c>.</summary>
    public async Task LoadBusyboxAsync(CancellationToken ct) =>
        (await DockerAsync(["load", "-i", await OciImage.GetDockerAsync()], timeout: TimeSpan.FromSeconds(120), ct: ct)).EnsureSuccess();

    /// <summary>The last lines of dockerd's log.</summary>
    public string LogTail(int lines)
    {
        try
        {
            using var fs = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var r = new StreamReader(fs);
            return string.Join('\n', r.ReadToEnd().Split('\n').TakeLast(lines));
        }
        catch (IOException e) { return $"(no log: {e.Message})"; }
    }

    /// <summary>
    /// Removes every container (docker rm -f), stops dockerd by its PID (SIGTERM, SIGKILL after
    /// 15 s), unmounts whatever is left under <see cref="Dir"/>, removes it and the cgroup parent.
    /// Runs even after a failed test; never throws.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) { return; }
        _disposed = true;
        var notes = new List<string>();
        if (!_daemon.HasExited)
        {
            var ids = (await Quiet(notes, () => DockerAsync(["ps", "-aq"], timeout: CleanupCallTimeout)))?.Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (ids.Length > 0) { await Quiet(notes, () => DockerAsync(["rm", "-f", .. ids], timeout: CleanupCallTimeout)); }
            await Daemons.StopAsync(_daemon, "dockerd", TimeSpan.FromSeconds(15), notes);
        }
        _daemon.Dispose();

        foreach (var mp in ProcFs.MountsUnder(Dir))
        {
            notes.Add($"unmounted leftover {mp}");
            await Quiet(notes, () => Command.RunAsync("umount", ["-l", mp], timeout: CleanupCallTimeout));
        }
        foreach (var controller in SafeDirs("/sys/fs/cgroup"))
        {
            var parent = controller + CgroupParent;
            try { if (Directory.Exists(parent) && !Directory.EnumerateDirectories(parent).Any()) { Directory.Delete(parent); } }
            catch (IOException e) { notes.Add($"could not remove {parent}: {e.Message}"); }
            catch (UnauthorizedAccessException e) { notes.Add($"could not remove {parent}: {e.Message}"); }
        }
        if (_madeRunDocker)
        {
            // only empty dirs go (non-recursive deletes): anything else in there is not ours
            foreach (var d in new[] { Path.Combine(RunDocker, "plugins"), RunDocker })
            {
                try { if (Directory.Exists(d)) { Directory.Delete(d); } }
                catch (IOException e) { notes.Add($"left {d}: {e.Message}"); }
                catch (UnauthorizedAccessException e) { notes.Add($"left {d}: {e.Message}"); }
            }
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
            TestContext.Current.TestOutputHelper?.WriteLine("docker cleanup: " + string.Join("\ndocker cleanup: ", notes));
        }
    }

    private static async Task<T?> Quiet<T>(List<string> notes, Func<Task<T>> f)
    {
        try { return await f(); }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            notes.Add($"cleanup step failed: {e.Message}");
            return default;
        }
    }

    private static string[] SafeDirs(string dir)
    {
        try { return Directory.GetDirectories(dir); }
        catch (IOException) { return []; }
    }

    private static string MakeTempDir()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var name = "rcs-dk-" + new string(Enumerable.Range(0, 6).Select(_ => alphabet[Random.Shared.Next(alphabet.Length)]).ToArray());
            var path = Path.Combine("/tmp", name);
            if (Directory.Exists(path)) { continue; }
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return path;
        }
        throw new IOException("could not create a temp dir under /tmp");
    }
}
