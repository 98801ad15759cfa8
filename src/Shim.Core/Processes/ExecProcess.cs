using Shim.Core.Errors;
using Shim.Core.Options;
using Shim.Core.Stdio;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>An extra process in a container: stored by Exec, run by Start through runc exec --detach.</summary>
internal sealed class ExecProcess : ContainerProcess
{
    private readonly byte[] _processJson;
    private readonly Container _container;

    /// <summary>Stores an exec; nothing runs until <see cref="StartAsync"/>.</summary>
    public ExecProcess(Container container, string execId, StdioPaths stdio, byte[] processJson)
        : base((container ?? throw new ArgumentNullException(nameof(container))).Id, execId, stdio, container.Init.Sequencer, ExecState.Created)
    {
        _container = container;
        _processJson = processJson;
    }

    private string PidFile => Path.Combine(_container.Bundle, ExecId + ".pid");

    /// <summary>The current state; it performs or refuses every operation.</summary>
    internal ExecState State => (ExecState)CurrentState;

    /// <summary>
    /// runc exec --detach; TaskExecStarted goes out before any TaskExit of this exec. A failed start
    /// is final: the exec is stopped and Wait answers (containerd's shim closes its wait channel too).
    /// </summary>
    public async Task StartAsync(ExitRouter router, RuntimeOptions options, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await State.StartAsync(this, router, options, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Signals the exec through its pidfd (runc is not involved), so a pid reused since its exit is
    /// never hit. A Kill during Start waits for it and signals the process it started.
    /// </summary>
    public async Task KillAsync(uint signal, CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        State.Kill(this, signal);
    }

    /// <summary>Deletes a stopped (or never started) exec: drains its output, closes its stdio, removes its pid file. A Delete during Start waits for it, and so does one while its exit, reaped, is not yet reported.</summary>
    public async Task DeleteAsync(CancellationToken ct)
    {
        using var turn = await TurnAsync(ct).ConfigureAwait(false);
        await ReportedExitAsync(ct).ConfigureAwait(false);
        await State.DeleteAsync(this).ConfigureAwait(false);
    }

    /// <summary>runc exec through the one start protocol; running (moved from <paramref name="from"/>) once runc returned.</summary>
    internal Task RunExecAsync(ExitRouter router, RuntimeOptions options, ProcessState from, CancellationToken ct)
    {
        var plan = new StartPlan(router, PidFile, options.IoUid, options.IoGid, _container.Namespace,
            (io, token) => _container.Init.Runc.ExecAsync(ContainerId, _processJson, PidFile, io.ConsoleSocketPath, io.RuncSide, token))
        {
            Stdio = _container.Stdio,
            RunningFrom = from,
        };
        return ProcessStarter.StartAsync(this, plan, ct);
    }

    /// <summary>kill(2) through the pidfd; NotFound once the exec was reaped (its exit may still be held for its output).</summary>
    internal void Signal(uint signal)
    {
        if (!SignalProcess((int)signal))
        {
            throw new ShimException(ErrorKind.NotFound, $"kill exec {ExecId} of {ContainerId}: process already finished");
        }
    }

    /// <summary>Closes the exec's stdio and pidfd and removes its pid file.</summary>
    internal void Remove()
    {
        Release();
        File.Delete(PidFile);
    }
}
