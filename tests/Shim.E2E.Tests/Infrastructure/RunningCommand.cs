using System.Diagnostics;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>
/// A program left running while the test reads its stdout at its own pace (a slow or paused
/// reader, or one that goes away); stdin is closed at once, stderr is collected. Disposing kills
/// it by PID if it still runs.
/// </summary>
internal sealed class RunningCommand : IAsyncDisposable
{
    private readonly Process _process;
    private readonly MemoryStream _stderr = new();
    private readonly Task _stderrTask;

    private RunningCommand(Process process, string text)
    {
        _process = process;
        Text = text;
        _stderrTask = process.StandardError.BaseStream.CopyToAsync(_stderr, CancellationToken.None);
    }

    /// <summary>The command line, for messages.</summary>
    public string Text { get; }

    /// <summary>The program's pid.</summary>
    public int Pid => _process.Id;

    /// <summary>The program's stdout, read by the test.</summary>
    public Stream Stdout => _process.StandardOutput.BaseStream;

    /// <summary>True once the program exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>Starts <paramref name="file"/> with stdin at EOF.</summary>
    public static RunningCommand Start(string file, IReadOnlyList<string> args)
    {
        var p = Process.Start(Command.StartInfo(file, args)) ?? throw new InvalidOperationException($"could not start {file}");
        p.StandardInput.Close();
        return new RunningCommand(p, Command.Text(file, args));
    }

    /// <summary>Waits for the exit (the test must keep reading stdout); kills it and throws after <paramref name="timeout"/>.</summary>
    public async Task<int> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"`{Text}` did not finish within {timeout.TotalSeconds:0} s and was killed; stderr: {Stderr}");
        }
        await _stderrTask;
        return _process.ExitCode;
    }

    /// <summary>What the program wrote to stderr so far.</summary>
    public string Stderr
    {
        get
        {
            lock (_stderr) { return Encoding.UTF8.GetString(_stderr.ToArray()); }
        }
    }

    /// <summary>SIGKILL by pid (the program only; what it started lives on).</summary>
    public void Kill()
    {
        try { _process.Kill(entireProcessTree: false); }
        catch (InvalidOperationException) { }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _process.WaitForExitAsync(CancellationToken.None);
        try { await _stderrTask; } catch (IOException) { }
        _process.Dispose();
    }
}
