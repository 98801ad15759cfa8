using Grpc.Core;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// A numbered sequence of checks that keeps going after a failure where later checks still make
/// sense, so one run reports every broken step (with the daemon's error text), not just the first.
/// A failed step marked <c>fatal</c> stops the sequence: the rest are reported as not run.
/// </summary>
internal sealed class CheckList(string title, Action<string> log)
{
    private readonly List<(string Name, string? Error)> _results = [];
    private string? _stoppedBy;

    public async Task<bool> RunAsync(string name, Func<Task> body, bool fatal = false)
    {
        var label = $"{_results.Count + 1,2}. {name}";
        if (_stoppedBy is not null)
        {
            _results.Add((label, $"not run: stopped after \"{_stoppedBy}\""));
            return false;
        }
        var started = DateTime.UtcNow;
        string? error = null;
        try { await body(); }
        catch (RpcException e) { error = $"{e.StatusCode}: {e.Status.Detail}"; }
        catch (Exception e) when (e is not OperationCanceledException) { error = e.Message.ReplaceLineEndings(" "); }
        _results.Add((label, error));
        log($"{title} {label}: {(error is null ? "ok" : "FAILED: " + error)} ({(DateTime.UtcNow - started).TotalMilliseconds:0} ms)");
        if (error is not null && fatal) { _stoppedBy = name; }
        return error is null;
    }

    /// <summary>Fails the test with the list of failed checks, if any.</summary>
    public void AssertAllPassed()
    {
        var failed = _results.Where(r => r.Error is not null).ToList();
        Assert.True(failed.Count == 0,
            $"{title}: {_results.Count - failed.Count}/{_results.Count} checks passed; failed:\n"
            + string.Join('\n', failed.Select(f => $"  {f.Name}: {f.Error}")));
    }
}
