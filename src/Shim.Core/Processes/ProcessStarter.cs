using Google.Protobuf;
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
/// <param name="StartEvent">The event that must precede the process's TaskExit, given the pid.</param>
internal sealed record StartPlan(
    ExitRouter Router,
    string PidFile,
    uint IoUid,
    uint IoGid,
    string Namespace,
    Func<ProcessIo, CancellationToken, Task> RunRunc,
    Func<int, IMessage> StartEvent)
{
    /// <summary>The state the process leaves for running once runc returned (exec, restore); null for create, which stays created.</summary>
    public ProcessState? RunningFrom { get; init; }

    /// <summary>Runs with the pid before the start event (cgroup and OOM registration).</summary>
    public Action<int>? BeforeStartEvent { get; init; }

    /// <summary>What the process's stdio runs on.</summary>
    public required StdioContext Stdio { get; init; }
}

/// <summary>
/// The one start protocol of create, exec and restore: hold exits of unknown pids → open stdio (now
/// reachable by CloseIO and ResizePty) →
/// runc → read the pid → receive the console → copy stdio → open a pidfd → track the pid →
/// start event → replay an exit that came first; on failure everything is rolled back.
/// </summary>
internal static class ProcessStarter
{
    /// <summary>Starts <paramref name="process"/> as <paramref name="plan"/> says.</summary>
    public static async Task StartAsync(ContainerProcess process, StartPlan plan, CancellationToken ct)
    {
        var sequencer = process.Sequencer;
        sequencer.BeginStart(process);
        plan.Router.BeginStart(); // from here the exit of a pid not yet known is kept for Track
        int pid;
        try
        {
            var io = ProcessIo.Open(plan.Stdio, process.Stdio, plan.IoUid, plan.IoGid, process.ContainerId, plan.Namespace);
            // reachable from here on: a CloseIO or ResizePty that comes while runc runs acts on it
            process.AttachIo(io);
            await plan.RunRunc(io, ct).ConfigureAwait(false);
            pid = PidFile.Read(plan.PidFile);
            await io.ReceiveConsoleAsync(ct).ConfigureAwait(false);
            process.ApplyWindow();
            io.Start();
        }
        catch
        {
            plan.Router.EndStart();
            process.DetachIo();
            sequencer.StartFailed(process);
            throw;
        }
        // the pid names our unreaped child here, unless Track hands back its exit below
        var pidfd = OpenPidFd(process, pid);
        process.Attach(pid, pidfd);
        plan.BeforeStartEvent?.Invoke(pid);
        var early = plan.Router.Track(pid, process);
        if (early is not null)
        {
            process.DropPidFd(); // reaped before pidfd_open: it may name whoever took the pid since
        }
        if (plan.RunningFrom is { } from)
        {
            process.Move(from, RunningState.Instance); // before the start event, so an exit held for it finds the process running
        }
        sequencer.Started(process, plan.StartEvent(pid));
        if (early is { } exit)
        {
            sequencer.Reaped(process, exit);
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
            ShimLog.Warn("pidfd_open failed: the process cannot be signalled by the shim", ExitSequencer.Fields(process) + " " + ShimLog.Field("error", ex.Message));
            return null;
        }
    }
}
