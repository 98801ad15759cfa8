using System.Diagnostics.CodeAnalysis;
using Microsoft.Win32.SafeHandles;
using Shim.Os;
using Shim.Os.Terminals;

namespace Shim.Core.Stdio;

/// <summary>
/// Terminal mode: runc sends the pty master over a console socket; the shim copies the master's
/// output to the stdout FIFO, a file or a logging binary, and the stdin FIFO into the master.
/// runc's own fds are /dev/null.
/// </summary>
internal sealed class TerminalIo(StdioContext context, string containerId, string ns) : ProcessIo(context, containerId, ns)
{
    private static readonly TimeSpan ConsoleTimeout = TimeSpan.FromSeconds(30);

    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "disposed in ReleaseMode, which Dispose runs first")]
    private ConsoleSocket? _console;
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "registered with Own: the base class disposes it")]
    private SafeFileHandle? _master;
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "registered with Own: the base class disposes it")]
    private SafeFileHandle? _output;
    [SuppressMessage("Usage", "CA2213:Disposable fields should be disposed", Justification = "registered with Own: the base class disposes it")]
    private SafeFileHandle? _input;
    private BinaryLogger? _logger;

    public override string? ConsoleSocketPath => _console?.Path;

    public override SafeFileHandle? Master => _master;

    private protected override void OpenStreams(StdioPaths paths, string scheme, string stdoutPath, uint ioUid, uint ioGid)
    {
        _console = ConsoleSocket.Create();
        if (scheme is "binary" or "binary-v2")
        {
            // as containerd's shim (CopyConsole): the console is copied to the logger's stdout pipe;
            // a terminal has no separate stderr, so the logger's fd 4 sees EOF at once
            _logger = StartLogger(paths.Stdout);
            _logger.Stderr.Dispose();
            _output = Own(_logger.Stdout);
        }
        else if (stdoutPath.Length > 0)
        {
            _output = scheme == "file" ? OpenLogFile(stdoutPath) : OpenOutputPath(stdoutPath, "stdout", out _);
        }
        if (paths.Stdin.Length > 0)
        {
            _input = OpenStdinFifo(paths.Stdin);
        }
        RuncSide = RuncFds(null, null, null);
    }

    private protected override Task ReadyAsync(CancellationToken ct) => _logger?.WaitReadyAsync(Context.Loop, ct) ?? Task.CompletedTask;

    /// <summary>Takes the pty master runc sent and queues the copies through it.</summary>
    public override async Task ReceiveConsoleAsync(CancellationToken ct)
    {
        if (_console is null)
        {
            return;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ConsoleTimeout);
        var master = Own(await _console.ReceiveMasterAsync(timeout.Token).ConfigureAwait(false));
        _master = master;
        _console.Dispose();
        _console = null;
        if (_output is not null)
        {
            Copy(master, _output, true, Flow.Output, "terminal output");
        }
        if (_input is not null)
        {
            // the master stays open at stdin EOF: with a tty, EOF is a ^D the client types
            Copy(_input, master, false, Flow.Input, "terminal input");
        }
    }

    public override void Resize(uint width, uint height)
    {
        if (_master is { } master)
        {
            Terminal.Resize(master, (ushort)Math.Min(width, ushort.MaxValue), (ushort)Math.Min(height, ushort.MaxValue));
        }
    }

    private protected override void ReleaseMode()
    {
        _logger?.Stop();
        _logger = null;
        _console?.Dispose();
        _console = null;
    }
}
