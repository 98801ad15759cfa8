using System.Collections.Concurrent;
using Shim.Os;
using Shim.Runc;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Service;

/// <summary>
/// Stands in for runc: "create" starts a real `sleep` child (reaped by the one reaper) and writes its
/// pid file, "kill" signals it, "start" can be told to let the process die first. "restore" starts a
/// `sleep` like create; "checkpoint" kills it unless --leave-running and writes a dump.log when failing.
/// </summary>
internal sealed class FakeRunner : IRuncRunner
{
    public ConcurrentQueue<string> Calls { get; } = new();
    public ConcurrentDictionary<string, int> Pids { get; } = new();
    public bool ExitDuringStart { get; set; }
    public ConcurrentQueue<int> ExecPids { get; } = new();
    public ConcurrentDictionary<int, ChildProcess> Children { get; } = new();
    public bool FailExec { get; set; }
    public string ExecSeconds { get; set; } = "1000";
    public string? FailVerbWith { get; set; }

    /// <summary>When set, `kill --all` fails with this message (runc 1.1 without the container's cgroup).</summary>
    public string? FailKillAllWith { get; set; }

    /// <summary>"create" succeeds without writing its pid file (a runtime that exits 0 and did not do its job).</summary>
    public bool CreateWithoutPidFile { get; set; }
    public ConcurrentDictionary<string, IReadOnlyList<string>> ArgsByVerb { get; } = new();

    /// <summary>What "exec" runs (on the host, with the stdio runc was given); `sleep ExecSeconds` when null.</summary>
    public string[]? ExecCommand { get; set; }

    /// <summary>The pty slave of each terminal exec (runc keeps it as the process's stdio; the test reads its window size).</summary>
    public ConcurrentQueue<Microsoft.Win32.SafeHandles.SafeFileHandle> ExecTerminals { get; } = new();

    /// <summary>A verb that, once entered, waits for <see cref="Release"/> (so a test can act while "runc" runs).</summary>
    public string? HoldVerb { get; set; }
    public TaskCompletionSource HoldEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>What "--version" prints (the shim asks before a restore which flavour the binary is).</summary>
    public string VersionOutput { get; set; } = "runc version 1.3.6\ncommit: fake\n";

    public async Task<RuncResult> RunAsync(IReadOnlyList<string> args, RuncIo io, CancellationToken ct)
    {
        if (args is [_, "--version"])
        {
            return new RuncResult(0, System.Text.Encoding.UTF8.GetBytes(VersionOutput), "");
        }
        string verb = args[7];
        string id = args[^1];
        Calls.Enqueue(verb);
        ArgsByVerb[verb] = [.. args];
        if (verb == HoldVerb)
        {
            HoldEntered.TrySetResult();
            await Release.Task.WaitAsync(ct);
        }
        if (FailVerbWith is { } message && message.StartsWith(verb + ":", StringComparison.Ordinal))
        {
            if (verb == "checkpoint")
            {
                // like CRIU, leave a dump.log in the work path before failing
                string work = args[args.ToList().IndexOf("--work-path") + 1];
                Directory.CreateDirectory(work);
                await File.WriteAllTextAsync(Path.Combine(work, "dump.log"), "Error (criu/cr-dump.c:1): fake dump failure\n", ct);
            }
            return new RuncResult(1, [], message[(verb.Length + 1)..]);
        }
        switch (verb)
        {
            case "create":
                var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
                string pidFile = args[args.ToList().IndexOf("--pid-file") + 1];
                if (!CreateWithoutPidFile)
                {
                    await File.WriteAllTextAsync(pidFile, child.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
                }
                Pids[id] = child.Pid;
                Children[child.Pid] = child;
                break;
            case "exec" when FailExec:
                return new RuncResult(1, [], "exec failed: unable to start container process: exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory");
            case "exec":
                var execChild = Reaper.Instance.Spawn(ExecSpawn(args, io));
                string execPidFile = args[args.ToList().IndexOf("--pid-file") + 1];
                await File.WriteAllTextAsync(execPidFile, execChild.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
                ExecPids.Enqueue(execChild.Pid);
                Children[execChild.Pid] = execChild;
                break;
            case "restore":
                var restored = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
                string restorePidFile = args[args.ToList().IndexOf("--pid-file") + 1];
                await File.WriteAllTextAsync(restorePidFile, restored.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
                Pids[id] = restored.Pid;
                if (ExitDuringStart)
                {
                    Signals.Kill(restored.Pid, Signals.SIGKILL);
                    await restored.Exited.WaitAsync(ct); // the exit is reaped before restore returns
                }
                break;
            case "checkpoint":
                Directory.CreateDirectory(args[args.ToList().IndexOf("--work-path") + 1]);
                if (!args.Contains("--leave-running"))
                {
                    Signals.Kill(Pids[id], Signals.SIGKILL); // CRIU kills the dumped tree
                }
                break;
            case "start" when ExitDuringStart:
                Signals.Kill(Pids[id], Signals.SIGKILL);
                await Children[Pids[id]].Exited.WaitAsync(ct); // the exit is reaped while start is still in flight
                break;
            case "kill" when FailKillAllWith is { } failure && args.Contains("--all"):
                return new RuncResult(1, [], failure);
            case "kill":
                id = args[^2];
                if (!Signals.Kill(Pids[id], int.Parse(args[^1], System.Globalization.CultureInfo.InvariantCulture)))
                {
                    return new RuncResult(1, [], "container not running");
                }
                break;
            case "ps":
                return new RuncResult(0, System.Text.Encoding.UTF8.GetBytes($"[{Pids[id]}]"), "");
        }
        return new RuncResult(0, [], "");
    }

    /// <summary>
    /// The exec's process as runc would start it: on the pipes runc got, or on a new pty whose master
    /// goes to the console socket (runc sends it before `runc exec --detach` returns).
    /// </summary>
    private SpawnOptions ExecSpawn(IReadOnlyList<string> args, RuncIo io)
    {
        string[] command = ExecCommand ?? ["/bin/sleep", ExecSeconds];
        int socket = args.ToList().IndexOf("--console-socket");
        if (socket >= 0)
        {
            var (master, slave, _) = Terminal.OpenPty();
            using (master)
            {
                ConsoleSocket.SendMaster(args[socket + 1], master);
            }
            ExecTerminals.Enqueue(slave);
            return new SpawnOptions { Path = command[0], Args = command, Fds = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [0] = slave, [1] = slave, [2] = slave } };
        }
        if (io.Stdin is null)
        {
            return new SpawnOptions { Path = command[0], Args = command };
        }
        return new SpawnOptions { Path = command[0], Args = command, Fds = new Dictionary<int, System.Runtime.InteropServices.SafeHandle> { [0] = io.Stdin, [1] = io.Stdout!, [2] = io.Stderr! } };
    }
}
