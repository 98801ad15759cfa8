using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Errors;
using Shim.Core.Logging;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Stdio;

/// <summary>
/// The shim side of one process's stdio in pipe mode: runc (and so the process) gets pipe ends,
/// the shim copies between the pipes and containerd's FIFOs (or a log file) on the shared IoLoop.
/// Output FIFOs are held open read-write so output written before a reader attaches, or after it
/// detaches, waits in the FIFO instead of failing (PROTOCOL.md §11).
/// </summary>
public sealed class ProcessIo : IDisposable
{
    private readonly List<SafeHandle> _runcSide = new(3);
    private readonly List<SafeHandle> _owned = new(6);
    private readonly List<(SafeHandle Source, SafeHandle Destination, bool CloseAtEof, string Stream)> _pumps = new(3);
    private readonly List<PumpHandle> _outputs = new(2);
    private readonly List<(SafeHandle Pipe, SafeHandle Fifo)> _delivery = new(2);
    private readonly CancellationTokenSource _abandon = new();
    private SafeFileHandle? _stdinKeeper;
    private ConsoleSocket? _console;
    private SafeFileHandle? _terminalOutput;
    private SafeFileHandle? _terminalInput;

    private readonly string _containerId;
    private readonly string _namespace;
    private BinaryLogger? _logger;

    private ProcessIo(string containerId, string ns)
    {
        _containerId = containerId;
        _namespace = ns;
    }

    /// <summary>Handles to give runc as its fds 0, 1 and 2 (/dev/null where no stream was asked for).</summary>
    public RuncIo RuncSide { get; private set; } = RuncIo.Captured;

    /// <summary>Opens the FIFOs, files or logging binary and creates the pipes; nothing is copied before <see cref="Start"/>.</summary>
    public static ProcessIo Open(StdioPaths paths, uint ioUid, uint ioGid, string containerId = "", string ns = "")
    {
        var io = new ProcessIo(containerId, ns);
        try
        {
            io.OpenAll(paths, ioUid, ioGid);
            return io;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    private void OpenAll(StdioPaths paths, uint ioUid, uint ioGid)
    {
        var (scheme, stdoutPath) = Split(paths.Stdout);
        SafeHandle? stdin = null, stdout = null, stderr = null;
        if (paths.Terminal)
        {
            OpenTerminal(paths, scheme, stdoutPath);
            RuncSide = new RuncIo { Stdin = DevNull(), Stdout = DevNull(), Stderr = DevNull() };
            return;
        }
        if (paths.Stdin.Length > 0)
        {
            var (reader, keeper) = Fifos.OpenInput(paths.Stdin);
            _owned.Add(reader);
            _stdinKeeper = keeper;
            var (pipeRead, pipeWrite) = Pipes.Create();
            stdin = RuncEnd(pipeRead, ioUid, ioGid);
            _owned.Add(pipeWrite);
            _pumps.Add((reader, pipeWrite, true, "stdin"));
        }
        switch (scheme)
        {
            case "" or "fifo":
                stdout = OutputToFifo(stdoutPath, ioUid, ioGid, "stdout");
                stderr = OutputToFifo(Split(paths.Stderr).Path, ioUid, ioGid, "stderr");
                break;
            case "file":
                // one append-mode handle per stream, so each is closed at its own EOF
                stdout = OutputTo(OpenLogFile(stdoutPath), ioUid, ioGid, "stdout");
                stderr = OutputTo(OpenLogFile(stdoutPath), ioUid, ioGid, "stderr");
                break;
            case "binary" or "binary-v2":
                _logger = BinaryLogger.Start(new Uri(paths.Stdout), _containerId, _namespace);
                stdout = RuncEnd(_logger.Stdout, ioUid, ioGid);
                stderr = RuncEnd(_logger.Stderr, ioUid, ioGid);
                break;
            default:
                throw new ShimException(ErrorKind.InvalidArgument, $"stdio scheme {scheme}:// is not supported");
        }
        RuncSide = new RuncIo
        {
            Stdin = stdin ?? DevNull(),
            Stdout = stdout ?? DevNull(),
            Stderr = stderr ?? DevNull(),
        };
    }

    /// <summary>The socket runc sends the pty master to (terminal mode only).</summary>
    public string? ConsoleSocketPath => _console?.Path;

    /// <summary>The pty master once received (terminal mode only).</summary>
    public SafeFileHandle? Master { get; private set; }

    /// <summary>Terminal mode: takes the pty master runc sent and queues the copies through it.</summary>
    public async Task ReceiveConsoleAsync(CancellationToken ct)
    {
        if (_console is null)
        {
            return;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        var master = await _console.ReceiveMasterAsync(timeout.Token).ConfigureAwait(false);
        _owned.Add(master);
        Master = master;
        _console.Dispose();
        _console = null;
        if (_terminalOutput is not null)
        {
            _pumps.Add((master, _terminalOutput, true, "terminal output"));
        }
        if (_terminalInput is not null)
        {
            // the master stays open at stdin EOF: with a tty, EOF is a ^D the client types
            _pumps.Add((_terminalInput, master, false, "terminal input"));
        }
    }

    /// <summary>Sets the pty window size; a process without a terminal ignores it, as in the Go shim.</summary>
    public void Resize(uint width, uint height)
    {
        if (Master is { } master)
        {
            Terminal.Resize(master, (ushort)Math.Min(width, ushort.MaxValue), (ushort)Math.Min(height, ushort.MaxValue));
        }
    }

    private void OpenTerminal(StdioPaths paths, string scheme, string stdoutPath)
    {
        if (scheme is not ("" or "fifo" or "file" or "binary" or "binary-v2"))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"stdio scheme {scheme}:// is not supported");
        }
        _console = ConsoleSocket.Create();
        if (scheme is "binary" or "binary-v2")
        {
            // as containerd's shim (CopyConsole): the console is copied to the logger's stdout pipe;
            // a terminal has no separate stderr, so the logger's fd 4 sees EOF at once
            _logger = BinaryLogger.Start(new Uri(paths.Stdout), _containerId, _namespace);
            _logger.Stderr.Dispose();
            _terminalOutput = _logger.Stdout;
            _owned.Add(_terminalOutput);
        }
        else if (stdoutPath.Length > 0)
        {
            _terminalOutput = scheme == "file" || !Fds.IsFifo(stdoutPath) ? OpenLogFile(stdoutPath) : Fifos.OpenOutput(stdoutPath);
            _owned.Add(_terminalOutput);
        }
        if (paths.Stdin.Length > 0)
        {
            var (reader, keeper) = Fifos.OpenInput(paths.Stdin);
            _owned.Add(reader);
            _stdinKeeper = keeper;
            _terminalInput = reader;
        }
    }

    /// <summary>Called after runc has the pipe ends: drops the shim's copies and starts copying.</summary>
    public void Start()
    {
        foreach (var handle in _runcSide)
        {
            handle.Dispose();
        }
        _runcSide.Clear();
        foreach (var (source, destination, closeAtEof, stream) in _pumps)
        {
            var pump = IoLoop.Shared.StartPump(source, destination, closeAtEof, _abandon.Token);
            if (stream is not ("stdin" or "terminal input"))
            {
                _outputs.Add(pump);
            }
            pump.Completion.ContinueWith(t => Report(stream, t), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
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
    /// Waits until every output stream reached EOF (all writers gone). Gives up only after
    /// <paramref name="idleTimeout"/> in which no byte moved: a slow reader still gets everything
    /// (the process is gone, so the end is near), a reader that went away does not hold Delete.
    /// </summary>
    public async Task<bool> WaitOutputAsync(TimeSpan idleTimeout)
    {
        if (_outputs.Count == 0)
        {
            return true;
        }
        var all = Task.WhenAll(_outputs.Select(o => o.Completion));
        long before = OutputCopied();
        while (await Task.WhenAny(all, Task.Delay(idleTimeout)).ConfigureAwait(false) != all)
        {
            long now = OutputCopied();
            if (now == before)
            {
                ShimLog.Warn("stdio copy made no progress: nobody reads it", ShimLog.Field("id", _containerId) + " " + ShimLog.Field("idle", idleTimeout));
                return false;
            }
            before = now;
        }
        return true;
    }

    /// <summary>
    /// True while output sits unread in the pipes from the process or in the client's FIFOs (pipe
    /// mode). Once the process has exited, that is output the client may never read: ctr
    /// closes its FIFOs right after the exit event (1.6: io.Close in task.Delete; 1.7+: cio.Cancel)
    /// and loses what it had not read yet, with containerd's own shim too.
    /// </summary>
    public bool HoldsUnreadOutput() => UnreadOutput() > 0;

    /// <summary>
    /// Waits until the client has read all output held in the pipes and FIFOs; gives up after
    /// <paramref name="idleLimit"/> in which nothing moved (nobody reads, e.g. `ctr run -d`), and
    /// after <paramref name="overallLimit"/> in any case (something outside keeps writing).
    /// </summary>
    public async Task WaitOutputReadAsync(TimeSpan idleLimit, TimeSpan overallLimit)
    {
        long unread = UnreadOutput();
        long copied = OutputCopied();
        long lastProgress = Environment.TickCount64;
        long deadline = lastProgress + (long)overallLimit.TotalMilliseconds;
        while (unread > 0)
        {
            if (Environment.TickCount64 > deadline)
            {
                ShimLog.Warn("exit reported with output still moving", ShimLog.Field("id", _containerId) + " " + ShimLog.Field("limit", overallLimit));
                return;
            }
            await Task.Delay(2).ConfigureAwait(false);
            long nowUnread = UnreadOutput();
            long nowCopied = OutputCopied();
            if (nowUnread != unread || nowCopied != copied)
            {
                lastProgress = Environment.TickCount64;
            }
            else if (Environment.TickCount64 - lastProgress > (long)idleLimit.TotalMilliseconds)
            {
                if (ShimLog.DebugEnabled)
                {
                    ShimLog.Debug("exit reported with output unread: nobody reads it", ShimLog.Field("id", _containerId) + " " + ShimLog.Field("unread", nowUnread));
                }
                return;
            }
            unread = nowUnread;
            copied = nowCopied;
        }
    }

    private long UnreadOutput()
    {
        long total = 0;
        foreach (var (pipe, fifo) in _delivery)
        {
            total += Pipes.Unread(pipe) + Pipes.Unread(fifo);
        }
        return total;
    }

    private long OutputCopied()
    {
        long total = 0;
        foreach (var output in _outputs)
        {
            total += output.BytesCopied;
        }
        return total;
    }

    /// <summary>
    /// Releases everything. Copies still running are stopped: by now the process is deleted and
    /// its output was waited for (containerd deletes only after its reader saw EOF), so a copy
    /// left is stuck on a reader that went away and would otherwise hold its pipe and FIFO for
    /// the rest of the shim's life (a grouped shim serves a whole pod).
    /// </summary>
    public void Dispose()
    {
        if (!_abandon.IsCancellationRequested)
        {
            _abandon.Cancel();
        }
        _logger?.Stop();
        _logger = null;
        _console?.Dispose();
        _console = null;
        CloseStdin();
        foreach (var handle in _runcSide)
        {
            handle.Dispose();
        }
        _runcSide.Clear();
        // handles still owned by running pumps are closed by the pump (destination) or stay with
        // the pump until its source reaches EOF; only never-started ones are released here
        foreach (var (source, destination, _, _) in _pumps)
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

    /// <summary>
    /// A copy that ended other than at a clean end of file loses bytes or cuts a stream short:
    /// never silently. (The stdin copy counts too: its failure ends the process's input early.)
    /// </summary>
    private void Report(string stream, Task<PumpResult> pump)
    {
        if (!pump.IsCompletedSuccessfully)
        {
            ShimLog.Warn("stdio copy failed", ShimLog.Field("id", _containerId) + " " + ShimLog.Field("stream", stream) + " " + ShimLog.Field("error", pump.Exception?.GetBaseException().Message));
            return;
        }
        var result = pump.Result;
        if (result.Errno == 0 && result.BytesDropped == 0)
        {
            return;
        }
        string fields = ShimLog.Field("id", _containerId) + " " + ShimLog.Field("stream", stream) + " " + ShimLog.Field("copied", result.BytesCopied)
            + " " + ShimLog.Field("dropped", result.BytesDropped) + " " + ShimLog.Field("errno", result.Errno);
        if (result.Cancelled)
        {
            ShimLog.Warn("stdio copy abandoned at delete: nobody read the rest", fields);
        }
        else if (result.BytesDropped > 0)
        {
            ShimLog.Warn("output bytes could not be delivered", fields);
        }
        else
        {
            ShimLog.Warn("stdio copy ended on an error", fields);
        }
    }

    private SafeHandle? OutputToFifo(string path, uint uid, uint gid, string stream)
    {
        if (path.Length == 0)
        {
            return null;
        }
        if (!Fds.IsFifo(path))
        {
            return OutputTo(OpenLogFile(path), uid, gid, stream);
        }
        var destination = Fifos.OpenOutput(path);
        _owned.Add(destination);
        var observer = Fifos.OpenObserver(path);
        _owned.Add(observer);
        return OutputTo(destination, uid, gid, stream, observer);
    }

    /// <param name="observer">For a FIFO: the handle that shows what the client has not read yet (<see cref="HoldsUnreadOutput"/>).</param>
    private SafeHandle OutputTo(SafeHandle destination, uint uid, uint gid, string stream, SafeHandle? observer = null)
    {
        var (pipeRead, pipeWrite) = Pipes.Create();
        _owned.Add(pipeRead);
        if (observer is not null)
        {
            _delivery.Add((pipeRead, observer));
        }
        // the destination is closed at EOF: the reader (ctr, CRI) waits for EOF on the FIFO before Delete,
        // and data still buffered in the FIFO stays readable after our close, as long as a reader holds it
        _pumps.Add((pipeRead, destination, true, stream));
        return RuncEnd(pipeWrite, uid, gid);
    }

    private SafeFileHandle OpenLogFile(string path)
    {
        string? dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }
        var file = Fds.Open(path, Fds.O_WRONLY | Fds.O_CREAT | Fds.O_APPEND, Convert.ToInt32("644", 8));
        _owned.Add(file);
        return file;
    }

    private SafeHandle RuncEnd(SafeFileHandle end, uint uid, uint gid)
    {
        if (uid != 0 || gid != 0)
        {
            Fds.Fchown(end, (int)uid, (int)gid);
        }
        _runcSide.Add(end);
        return end;
    }

    private SafeFileHandle DevNull()
    {
        var handle = Fds.Open("/dev/null", Fds.O_RDWR);
        _runcSide.Add(handle);
        return handle;
    }

    private static (string Scheme, string Path) Split(string uri)
    {
        int i = uri.IndexOf("://", StringComparison.Ordinal);
        if (i < 0)
        {
            return ("", uri);
        }
        var parsed = new Uri(uri);
        return (parsed.Scheme, Uri.UnescapeDataString(parsed.AbsolutePath));
    }
}
