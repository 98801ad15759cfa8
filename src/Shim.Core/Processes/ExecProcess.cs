using Containerd.Events;
using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Options;
using Shim.Core.Stdio;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Processes;

/// <summary>An extra process in a container: stored by Exec, run by Start through runc exec --detach.</summary>
public sealed class ExecProcess : ContainerProcess
{
    private readonly byte[] _processJson;
    private readonly Container _container;

    /// <summary>Stores an exec; nothing runs until <see cref="StartAsync"/>.</summary>
    public ExecProcess(Container container, string execId, StdioPaths stdio, byte[] processJson, IEventPublisher events)
        : base(container.Id, execId, stdio, events)
    {
        _container = container;
        _processJson = processJson;
    }

    private string PidFile => Path.Combine(_container.Bundle, ExecId + ".pid");

    /// <summary>runc exec --detach; TaskExecStarted goes out before any TaskExit of this exec.</summary>
    public async Task StartAsync(ExitRouter router, RuntimeOptions options, CancellationToken ct)
    {
        BeginStart();
        if (!_container.TryBeginExec())
        {
            AbortStart();
            throw new ShimException(ErrorKind.FailedPrecondition, $"cannot start exec {ExecId} in container {ContainerId}: the init process has exited");
        }
        router.BeginStart();
        bool tracked = false;
        try
        {
            Io = ProcessIo.Open(Stdio, options.IoUid, options.IoGid, ContainerId, _container.Namespace);
            await _container.Init.Runc.ExecAsync(ContainerId, _processJson, PidFile, Io.ConsoleSocketPath, Io.RuncSide, ct).ConfigureAwait(false);
            Pid = ReadPid(PidFile);
            await Io.ReceiveConsoleAsync(ct).ConfigureAwait(false);
            Io.Start();
            var early = router.Track(Pid, this);
            tracked = true;
            EndStart(new TaskExecStarted { ContainerId = ContainerId, ExecId = ExecId, Pid = (uint)Pid });
            if (early is { } exit)
            {
                OnExit(exit);
            }
        }
        catch
        {
            if (!tracked)
            {
                router.EndStart();
                Io?.Dispose();
                _container.EndExec();
                AbortStart();
            }
            throw;
        }
    }

    /// <summary>kill(2) on the exec's pid; runc is not involved.</summary>
    public void Kill(uint signal)
    {
        Check(s => s.CheckKill(isExec: true));
        if (!Signals.Kill(Pid, (int)signal))
        {
            throw new ShimException(ErrorKind.NotFound, $"kill exec {ExecId} of {ContainerId}: process already finished");
        }
    }

    /// <summary>Deletes a stopped (or never started) exec: drains its output, closes its stdio, removes its pid file.</summary>
    public async Task DeleteAsync()
    {
        var state = Check(s => s.CheckDelete());
        if (state == StoppedState.Instance && Io is not null)
        {
            await Io.WaitOutputAsync(OutputDrainTimeout).ConfigureAwait(false);
        }
        Io?.Dispose();
        File.Delete(PidFile);
        Become(DeletedState.Instance);
    }

    /// <inheritdoc />
    protected override void AfterExit() => _container.EndExec();

    private static int ReadPid(string path)
    {
        string text = File.ReadAllText(path).Trim();
        if (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            throw new ShimException(ErrorKind.Internal, $"runc wrote an invalid pid \"{text}\" to {path}");
        }
        return pid;
    }
}
