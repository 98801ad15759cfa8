using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Events;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Os;
using Shim.Runc;
using Shim.Os.Io;

namespace Shim.Ttrpc.Fuzz;

/// <summary>
/// The real task service with live containers for the live-server fuzzer: "runc" creates a real
/// `sleep` child per container (reaped by the one reaper and routed by a real exit loop), kills it
/// on runc kill and delete; runc exec starts one too (at most <see cref="LiveRunner.MaxExecs"/> at
/// a time), restore is refused. Requests that would act outside this fixture are screened by
/// <see cref="IsScreened"/> (the live-server test) or <see cref="Targets.ServiceTarget"/> and never sent.
/// </summary>
internal sealed class LiveFuzzService : IAsyncDisposable
{
    /// <summary>The ids a fuzzed Create may use, each with its own bundle (runc create's pid file lives there).</summary>
    public static readonly string[] LiveIds = ["c1", "c2", "c3"];

    // RCS_FUZZ_ROOT: a fixed root, so that an AFL corpus's paths name this fixture in every run (fuzz/run.sh sets it)
    private static readonly string Root = Environment.GetEnvironmentVariable("RCS_FUZZ_ROOT") is { Length: > 0 } root
        ? Path.GetFullPath(root)
        : Path.Combine(Path.GetTempPath(), $"rcs-fuzz-live-{Environment.ProcessId}");

    private readonly CancellationTokenSource _stop = new();
    private readonly ExitSubscription _exits;
    private readonly Task _exitLoop;
    private readonly LiveRunner _runner = new();

    public LiveFuzzService()
    {
        foreach (string id in LiveIds)
        {
            Directory.CreateDirectory(BundleOf(id));
            File.WriteAllText(Path.Combine(BundleOf(id), "config.json"), """{"linux":{"namespaces":[{"type":"pid"}]}}""");
        }
        MakeIoFixtures();
        Reaper.Instance.Start();
        _exits = Reaper.Instance.Subscribe();
        var router = new ExitRouter();
        _exitLoop = router.RunAsync(_exits, _stop.Token);
        Service = new TaskService(new ShimSettings { Namespace = "fuzz", Id = "fuzz" }, new DiscardPublisher(), _runner, router,
            new Shim.Core.Stdio.StdioContext(IoLoop.Shared, Reaper.Instance, TimeProvider.System));
        Registry = new TtrpcServiceRegistry();
        Service.Register(Registry);
    }

    public TaskService Service { get; }

    public TtrpcServiceRegistry Registry { get; }

    /// <summary>Containers "runc" created so far.</summary>
    public int Created => _runner.Created;

    /// <summary>The bundle of live container <paramref name="id"/>.</summary>
    public static string BundleOf(string id) => Path.Combine(Root, id);

    /// <summary>Where fuzzed stdio may point: FIFOs, a log file, a directory, a logging binary, a file that is not one.</summary>
    public static string IoDir => Path.Combine(Root, "io");

    /// <summary>The stdio fixtures under <see cref="IoDir"/>, by name.</summary>
    public static readonly string[] IoFixtures = ["fifo-in", "fifo-out", "fifo-err", "file.log", "dir", "logger.sh", "plain", "missing", "sub/new.log"];

    /// <summary>The scratch root everything of this fixture lives under.</summary>
    public static string RootDir => Root;

    private static void MakeIoFixtures()
    {
        Directory.CreateDirectory(Path.Combine(IoDir, "dir"));
        foreach (string fifo in (string[])["fifo-in", "fifo-out", "fifo-err"])
        {
            Fifos.Create(Path.Combine(IoDir, fifo));
        }
        File.WriteAllText(Path.Combine(IoDir, "file.log"), "");
        File.WriteAllText(Path.Combine(IoDir, "plain"), "not a program\n");
        File.WriteAllText(Path.Combine(IoDir, "runc.toml"), "BinaryName = \"runc\"\nSystemdCgroup = false\n");
        // a binary:// logger (PROTOCOL.md §11): ready on fd 5, then reads stdout (fd 3) until its end
        string logger = Path.Combine(IoDir, "logger.sh");
        File.WriteAllText(logger, "#!/bin/sh\nprintf r >&5\nexec 5>&-\nexec cat <&3 >/dev/null\n");
        File.SetUnixFileMode(logger, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>A Create the generator builds for one of <see cref="LiveIds"/>: its bundle, no mounts, no stdio, no terminal.</summary>
    public static CreateTaskRequest LiveCreate(string id) => new() { Id = id, Bundle = BundleOf(id) };

    /// <summary>
    /// True for a decoded call that must not run here: a Create other than a plain one of a
    /// <see cref="LiveIds"/> container in its bundle (it would mount and write where the request says; a terminal would wait
    /// 30 s for a console no fake runc sends), an Exec with stdio paths (Start would open or create
    /// them, or run a binary:// logger), a Checkpoint with options (a work path anywhere), and Wait
    /// (it blocks while the live container runs, by design).
    /// </summary>
    public static bool IsScreened(string method, IMessage message) => method switch
    {
        "Create" => message is not CreateTaskRequest c || !LiveIds.Contains(c.Id) || c.Bundle != BundleOf(c.Id) || c.Rootfs.Count > 0 || c.Terminal
            || c.Stdin.Length > 0 || c.Stdout.Length > 0 || c.Stderr.Length > 0 || c.Checkpoint.Length > 0 || c.ParentCheckpoint.Length > 0,
        "Exec" => message is not ExecProcessRequest e || e.Stdin.Length > 0 || e.Stdout.Length > 0 || e.Stderr.Length > 0,
        "Checkpoint" => message is not CheckpointTaskRequest k || k.Options is not null,
        "Wait" => true,
        _ => false,
    };

    public async ValueTask DisposeAsync()
    {
        _runner.KillAll();
        await _stop.CancelAsync().ConfigureAwait(false);
        await _exitLoop.ConfigureAwait(false);
        _exits.Dispose();
        _stop.Dispose();
        Directory.Delete(Root, recursive: true);
    }

    private sealed class DiscardPublisher : IEventPublisher
    {
        public void Publish(IMessage evt)
        {
        }

        public Task FlushAsync(TimeSpan timeout) => Task.CompletedTask;
    }

    private sealed class LiveRunner : IRuncRunner
    {
        /// <summary>The most exec children alive at once; runc exec fails beyond it.</summary>
        public const int MaxExecs = 32;

        private readonly ConcurrentDictionary<string, int> _pids = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<int, string> _execs = new();
        private int _created;

        public int Created => Volatile.Read(ref _created);

        public async Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
        {
            // argv: runc --root r --log l --log-format json [--systemd-cgroup] <verb> ..., or runc --version
            if (args is [_, "--version"])
            {
                return new RuncResult(0, "runc version 1.3.6\n"u8.ToArray(), "");
            }
            int at = args[7] == "--systemd-cgroup" ? 8 : 7;
            string verb = args[at];
            switch (verb)
            {
                case "create" or "exec" when args.Contains("--console-socket"):
                    // no pty to send: fail at once rather than leave the shim waiting for the console
                    return Fail($"fuzz: runc {verb} with a terminal is not available");
                case "create":
                {
                    var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
                    string pidFile = args[args.ToList().IndexOf("--pid-file") + 1];
                    await File.WriteAllTextAsync(pidFile, child.Pid.ToString(CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
                    if (_pids.TryRemove(args[^1], out int stale))
                    {
                        KillChild(stale, Signals.SIGKILL);
                    }
                    _pids[args[^1]] = child.Pid;
                    Interlocked.Increment(ref _created);
                    return Ok();
                }
                case "kill":
                    return _pids.TryGetValue(args[^2], out int pid) && KillChild(pid, Signals.SIGKILL) ? Ok() : Fail("container not running");
                case "delete":
                    if (_pids.TryRemove(args[^1], out int gone))
                    {
                        KillChild(gone, Signals.SIGKILL);
                    }
                    foreach (var (execPid, container) in _execs)
                    {
                        if (container == args[^1] && _execs.TryRemove(execPid, out _))
                        {
                            KillChild(execPid, Signals.SIGKILL);
                        }
                    }
                    return Ok();
                case "exec":
                {
                    foreach (int execPid in _execs.Keys.Where(p => !Directory.Exists($"/proc/{p}")))
                    {
                        _execs.TryRemove(execPid, out _);
                    }
                    if (!_pids.ContainsKey(args[^1]) || _execs.Count >= MaxExecs)
                    {
                        return Fail($"fuzz: container {args[^1]} is not running or has too many execs");
                    }
                    var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
                    string pidFile = args[args.ToList().IndexOf("--pid-file") + 1];
                    await File.WriteAllTextAsync(pidFile, child.Pid.ToString(CultureInfo.InvariantCulture), ct).ConfigureAwait(false);
                    _execs[child.Pid] = args[^1];
                    return Ok();
                }
                case "ps":
                    return _pids.TryGetValue(args[^1], out int running) ? new RuncResult(0, Encoding.ASCII.GetBytes($"[{running}]"), "") : Ok("null");
                case "restore":
                    return Fail($"fuzz: runc {verb} is not available");
                default:
                    return Ok();
            }
        }

        public void KillAll()
        {
            foreach (int pid in _pids.Values.Concat(_execs.Keys))
            {
                KillChild(pid, Signals.SIGKILL);
            }
            _pids.Clear();
            _execs.Clear();
        }

        /// <summary>SIGKILL to <paramref name="pid"/> only while it is still our child: a reaped pid may be reused by anyone.</summary>
        private static bool KillChild(int pid, int signal)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return fields.Length > 1 && fields[1] == Environment.ProcessId.ToString(CultureInfo.InvariantCulture) && Signals.Kill(pid, signal);
            }
            catch (IOException)
            {
                return false;
            }
        }

        private static RuncResult Ok(string stdout = "") => new(0, Encoding.ASCII.GetBytes(stdout), "");

        private static RuncResult Fail(string message) => new(1, [], message);
    }
}
