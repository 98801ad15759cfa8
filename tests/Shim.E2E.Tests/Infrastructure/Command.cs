using System.Diagnostics;
using System.Text;

namespace Shim.E2E.Tests;

/// <summary>What a finished command left behind.</summary>
internal sealed record CommandResult(string Command, int ExitCode, byte[] StdoutBytes, byte[] StderrBytes)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);
    public string Stderr => Encoding.UTF8.GetString(StderrBytes);

    /// <summary>One-line description for assertion messages.</summary>
    public string Describe() =>
        $"`{Command}` exited {ExitCode}; stdout: {Clip(Stdout)}; stderr: {Clip(Stderr)}";

    /// <summary>Throws with the command's output unless it exited 0.</summary>
    public CommandResult EnsureSuccess() =>
        ExitCode == 0 ? this : throw new InvalidOperationException(Describe());

    private static string Clip(string s) => s.Length <= 2000 ? s.TrimEnd() : s[..2000] + "…";
}

/// <summary>Runs a program to completion with a deadline (the test harness may use Process; the shim may not).</summary>
internal static class Command
{
    public static async Task<CommandResult> RunAsync(
        string file, IReadOnlyList<string> args, byte[]? stdin = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? env = null, CancellationToken ct = default)
    {
        var psi = StartInfo(file, args);
        if (env is not null) { foreach (var (k, v) in env) { psi.Environment[k] = v; } }
        var text = Text(file, args);

        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var stdout = new MemoryStream();
        var stderr = new MemoryStream();
        var outTask = p.StandardOutput.BaseStream.CopyToAsync(stdout, CancellationToken.None);
        var errTask = p.StandardError.BaseStream.CopyToAsync(stderr, CancellationToken.None);
        var inTask = Task.Run(async () =>
        {
            try
            {
                if (stdin is { Length: > 0 }) { await p.StandardInput.BaseStream.WriteAsync(stdin, CancellationToken.None); }
                p.StandardInput.Close();   // EOF: ctr then closes the container's stdin
            }
            catch (IOException) { }        // the process exited without reading everything
        }, CancellationToken.None);

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            try { p.Kill(); } catch (InvalidOperationException) { }
            await p.WaitForExitAsync(CancellationToken.None);
            await Task.WhenAll(outTask, errTask);
            throw new TimeoutException(
                $"`{text}` did not finish within {(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds:0} s and was killed; " +
                $"stdout: {Tail(stdout)}; stderr: {Tail(stderr)}");
        }
        await Task.WhenAll(outTask, errTask, inTask);
        return new CommandResult(text, p.ExitCode, stdout.ToArray(), stderr.ToArray());
    }

    /// <summary>All three streams redirected, arguments passed as they are.</summary>
    internal static ProcessStartInfo StartInfo(string file, IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) { psi.ArgumentList.Add(a); }
        return psi;
    }

    /// <summary>The command line for messages, arguments with spaces quoted.</summary>
    internal static string Text(string file, IReadOnlyList<string> args) =>
        file + " " + string.Join(' ', args.Select(a => a.Contains(' ', StringComparison.Ordinal) ? $"'{a}'" : a));

    private static string Tail(MemoryStream s)
    {
        var b = s.ToArray();
        return Encoding.UTF8.GetString(b, Math.Max(0, b.Length - 1000), Math.Min(1000, b.Length));
    }
}
