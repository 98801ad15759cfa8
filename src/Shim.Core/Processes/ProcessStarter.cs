using Shim.Core.Logging;
using Shim.Core.Stdio;
using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>What differs between create, exec and restore; the protocol around it is <see cref="ProcessStarter"/>'s.</summary>
/// <param name="Router">Routes the exits of the shim's children.</param>
/// <param name="PidFile">Where runc writes the new pid.</param>
/// <param name="IoUid">Owner of the process's stdio pipes.</param>
/// <param name="IoGid">Group of the process's stdio pipes.</param>
/// <param name="Namespace">The containerd namespace (for logging binaries).</param>
/// <param name="RunRunc">runc create, exec or restore with the process's stdio.</param>
internal sealed record StartPlan(
    ExitRouter Router,
    string PidFile,
    uint IoUid,
    uint IoGid,
    string Namespace,
    Func<ProcessIo, CancellationToken, Task> RunRunc)
{
    /// <summary>The state the process leaves for running once runc returned (exec, restore); null for create, which stays created.</summary>
    public ProcessState? RunningFrom { get; init; }

    /// <summary>Runs with the pid before the start event (cgroup and OOM registration).</summary>
    public Action<int>? BeforeStartEvent { get; init; }

    /// <summary>What goes out instead of TaskStart / TaskExecStarted (create: TaskCreate).</summary>
    public Action<Events.TaskEvents>? Announce { get; init; }

    /// <summary>What the process's stdio runs on.</summary>
    public required StdioContext Stdio { get; init; }

    /// <summary>Called before each step (tests make a step throw here); null in the shim.</summary>
    internal Action<StartStep>? Probe { get; init; }
}

/// <summary>The steps of a start, in order.</summary>
internal enum StartStep
{
    /// <summary>Open the FIFOs, files or logger and make the pipes.</summary>
    OpenStdio,

    /// <summary>runc create, exec or restore.</summary>
    RunRunc,

    /// <summary>Read the pid runc wrote, open a pidfd and route the pid's exit to the process (one step: from here a failure kills the process).</summary>
    ReadPid,

    /// <summary>Take the pty master runc sent (terminal) and apply the window size.</summary>
    ReceiveConsole,

    /// <summary>Start the stdio copies.</summary>
    CopyStdio,

    /// <summary>Cgroup and OOM registration with the pid.</summary>
    BeforeStartEvent,

    /// <summary>Running, the start event, then an exit that came first.</summary>
    Commit,
}

/// <summary>
/// The one start protocol of create, exec and restore: hold exits of unknown pids → open stdio (now
/// reachable by CloseIO and ResizePty) → runc → read the pid → open a pidfd → track the pid →
/// receive the console → copy stdio → start event → replay an exit that came first. The attempt
/// undoes itself unless committed, whichever step throws (<see cref="StartAttempt"/>).
/// </summary>
internal static class ProcessStarter
{
    /// <summary>Starts <paramref name="process"/> as <paramref name="plan"/> says.</summary>
    public static async Task StartAsync(ContainerProcess process, StartPlan plan, CancellationToken ct)
    {
        using var start = process.Sequencer.BeginStart(process, plan.Router);
        try
        {
            plan.Probe?.Invoke(StartStep.OpenStdio);
            var io = await ProcessIo.OpenAsync(plan.Stdio, process.Stdio, plan.IoUid, plan.IoGid, process.ContainerId, plan.Namespace, ct).ConfigureAwait(false);
            // reachable from here on: a CloseIO or ResizePty that comes while runc runs acts on it
            process.AttachIo(io);
            plan.Probe?.Invoke(StartStep.RunRunc);
            await plan.RunRunc(io, ct).ConfigureAwait(false);
            plan.Probe?.Invoke(StartStep.ReadPid);
            int pid = PidFile.Read(plan.PidFile);
            // the pid names our unreaped child here, unless Track hands back its exit
            process.Attach(pid, OpenPidFd(process, pid), plan.Stdio.Reaper);
            start.Track(pid);
            plan.Probe?.Invoke(StartStep.ReceiveConsole);
            await io.ReceiveConsoleAsync(ct).ConfigureAwait(false);
            process.ApplyWindow();
            plan.Probe?.Invoke(StartStep.CopyStdio);
            io.Start();
            plan.Probe?.Invoke(StartStep.BeforeStartEvent);
            plan.BeforeStartEvent?.Invoke(pid);
            plan.Probe?.Invoke(StartStep.Commit);
            if (plan.RunningFrom is { } from)
            {
                process.Move(from, process.IsInit ? InitState.Running : ExecState.Running); // before the start event, so an exit held for it finds the process running
            }
            start.Commit(plan.Announce);
        }
        catch
        {
            process.DetachIo();
            throw;
        }
    }

    private static PidFd? OpenPidFd(ContainerProcess process, int pid)
    {
        try
        {
            return PidFd.Open(pid);
        }
        catch (ErrnoException ex)
        {
            process.Sequencer.Log.Warn("pidfd_open failed: the process is signalled by pid while it is an unreaped child of the shim", ExitSequencer.Fields(process) + " " + ShimLog.Field("error", ex.Message));
            return null;
        }
    }
}
