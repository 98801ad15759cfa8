using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Os;
using Shim.Runc;
using Shim.Os.Io;

namespace Shim.Core.Stdio;

/// <summary>
/// The shim side of one process's stdio: what runc gets as fds 0-2, and the copies the shim runs
/// on the I/O loop between those and containerd's FIFOs, a log file or a logging binary. One
/// subclass per mode (<see cref="FifoIo"/>, <see cref="FileIo"/>, <see cref="LoggerIo"/>,
/// <see cref="TerminalIo"/>); this base holds the handles, the copies and the waits they share.
/// </summary>
public abstract partial class ProcessIo : IDisposable
{
    private readonly List<SafeHandle> _runcSide = new(3);
    private readonly List<SafeHandle> _owned = new(6);
    private readonly List<(SafeHandle Source, SafeHandle Destination, bool CloseAtEof, Flow Flow, string Stream)> _pumps = new(3);
    private readonly CancellationTokenSource _abandon = new();
    private SafeFileHandle? _stdinKeeper;

    private protected ProcessIo(StdioContext context, string containerId, string ns)
    {
        Context = context;
        ContainerId = containerId;
        Namespace = ns;
        _onProgress = OnProgress;
    }

    private protected StdioContext Context { get; }

    private protected string ContainerId { get; }

    private protected string Namespace { get; }

    /// <summary>Handles to give runc as its fds 0, 1 and 2 (/dev/null where no stream was asked for).</summary>
    public RuncIo RuncSide { get; private protected set; } = RuncIo.Captured;

    /// <summary>The socket runc sends the pty master to (terminal mode only).</summary>
    public virtual string? ConsoleSocketPath => null;

    /// <summary>The pty master once received (terminal mode only).</summary>
    public virtual SafeFileHandle? Master => null;

    /// <summary>
    /// Opens the FIFOs, files or logging binary and creates the pipes, and waits (holding no thread)
    /// until a logging binary signalled that it is ready; nothing is copied before <see cref="Start"/>.
    /// </summary>
    public static async Task<ProcessIo> OpenAsync(StdioContext context, StdioPaths paths, uint ioUid, uint ioGid, string containerId, string ns, CancellationToken ct)
    {
        var io = Open(context, paths, ioUid, ioGid, containerId, ns);
        try
        {
            await io.ReadyAsync(ct).ConfigureAwait(false);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <see cref="OpenAsync"/> without its wait: a logging binary is started but not waited for. The
    /// modes that wait for nothing (pipes, files, a terminal without a logger) are whole after it.
    /// </summary>
    internal static ProcessIo Open(StdioContext context, StdioPaths paths, uint ioUid, uint ioGid, string containerId = "", string ns = "")
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(paths);
        var (scheme, stdoutPath) = Split(paths.Stdout);
        ProcessIo io = (paths.Terminal, scheme) switch
        {
            (true, "" or "fifo" or "file" or "binary" or "binary-v2") => new TerminalIo(context, containerId, ns),
            (false, "" or "fifo") => new FifoIo(context, containerId, ns),
            (false, "file") => new FileIo(context, containerId, ns),
            (false, "binary" or "binary-v2") => new LoggerIo(context, containerId, ns),
            _ => throw new ShimException(ErrorKind.InvalidArgument, $"stdio scheme {scheme}:// is not supported"),
        };
        try
        {
            io.OpenStreams(paths, scheme, stdoutPath, ioUid, ioGid);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>Opens what the mode needs and sets <see cref="RuncSide"/>; a failure is cleaned up by <see cref="Dispose"/>.</summary>
    private protected abstract void OpenStreams(StdioPaths paths, string scheme, string stdoutPath, uint ioUid, uint ioGid);

    /// <summary>Waits for what must be ready before runc runs (a logging binary); a failure is cleaned up by <see cref="Dispose"/>.</summary>
    private protected virtual Task ReadyAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>Terminal mode: takes the pty master runc sent and queues the copies through it.</summary>
    public virtual Task ReceiveConsoleAsync(CancellationToken ct) => Task.CompletedTask;

    /// <summary>Sets the pty window size; a process without a terminal ignores it, as in the Go shim.</summary>
    public virtual void Resize(uint width, uint height)
    {
    }

    /// <summary>Called after runc has the pipe ends: drops the shim's copies and starts copying.</summary>
    public void Start()
    {
        foreach (var handle in _runcSide)
        {
            handle.Dispose();
        }
        _runcSide.Clear();
        foreach (var (source, destination, closeAtEof, flow, stream) in _pumps)
        {
            bool output = flow == Flow.Output;
            var pump = Context.Loop.StartPump(source, destination, closeAtEof, _abandon.Token, output ? _onProgress : null);
            if (output)
            {
                TrackOutput(pump);
            }
            pump.Completion.ContinueWith(t => Ended(stream, output, t), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        _pumps.Clear();
    }

    /// <summary>Drops the shim's write end of the stdin FIFO, so the process sees EOF once the client closes too.</summary>
    public void CloseStdin()
    {
        _stdinKeeper?.Dispose();
        _stdinKeeper = null;
    }

    /// <summary>
    /// Releases everything. Copies still running are stopped: by now the process is deleted and
    /// its output was waited for (containerd deletes only after its reader saw EOF), so a copy
    /// left is stuck on a reader that went away and would otherwise hold its pipe and FIFO for
    /// the rest of the shim's life (a grouped shim serves a whole pod).
    /// </summary>
    public void Dispose()
    {
        Dispose(disposing: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the handles and stops the copies; there is no finalizer, so <paramref name="disposing"/> is always true.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }
        if (!_abandon.IsCancellationRequested)
        {
            _abandon.Cancel();
        }
        ReleaseMode();
        CloseStdin();
        foreach (var handle in _runcSide)
        {
            handle.Dispose();
        }
        _runcSide.Clear();
        // handles still owned by running pumps are closed by the pump (destination) or stay with
        // the pump until its source reaches EOF; only never-started ones are released here
        foreach (var (source, destination, _, _, _) in _pumps)
        {
            source.Dispose();
            destination.Dispose();
        }
        _pumps.Clear();
        foreach (var handle in _owned)
        {
            handle.Dispose();
        }
        _owned.Clear();
        _abandon.Dispose();
    }

    /// <summary>Stops what only this mode has (a logging binary, a console socket); runs first in <see cref="Dispose"/>.</summary>
    private protected virtual void ReleaseMode()
    {
    }

    /// <summary>
    /// A copy that ended other than at a clean end of file loses bytes or cuts a stream short:
    /// never silently. (The stdin copy counts too: its failure ends the process's input early.)
    /// </summary>
    private void Ended(string stream, bool output, Task<PumpResult> pump)
    {
        if (output)
        {
            OutputEnded();
        }
        if (!pump.IsCompletedSuccessfully)
        {
            Context.Log.Warn("stdio copy failed", ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("stream", stream) + " " + ShimLog.Field("error", pump.Exception?.GetBaseException().Message));
            return;
        }
        var result = pump.Result;
        if (result.Errno == 0 && result.BytesDropped == 0)
        {
            return;
        }
        string fields = ShimLog.Field("id", ContainerId) + " " + ShimLog.Field("stream", stream) + " " + ShimLog.Field("copied", result.BytesCopied)
            + " " + ShimLog.Field("dropped", result.BytesDropped) + " " + ShimLog.Field("errno", result.Errno);
        if (result.Cancelled)
        {
            Context.Log.Warn("stdio copy abandoned at delete: nobody read the rest", fields);
        }
        else if (result.BytesDropped > 0)
        {
            Context.Log.Warn("output bytes could not be delivered", fields);
        }
        else
        {
            Context.Log.Warn("stdio copy ended on an error", fields);
        }
    }

    /// <summary>A stdio URI's scheme ("" for a bare path) and unescaped path.</summary>
    private protected static (string Scheme, string Path) Split(string uri) => StdioUri.Split(uri);
}
