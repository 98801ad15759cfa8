using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>One line of <c>ctr events</c>: "&lt;timestamp&gt; &lt;namespace&gt; &lt;topic&gt; &lt;event as JSON&gt;".</summary>
internal sealed partial record CtrEvent(string Raw, DateTimeOffset? Timestamp, string Namespace, string Topic, string Json)
{
    // e.g. "2026-11-29 04:29:47.123048048 +0000 UTC ex /tasks/create {...}"
    [GeneratedRegex(@"^(?<ts>\S+ \S+ [+-]\d{4} \S+) (?<ns>\S+) (?<topic>/\S+)(?: (?<json>.*))?$")]
    private static partial Regex LineRegex();

    /// <summary>Parses one output line; null for anything that is not an event.</summary>
    public static CtrEvent? Parse(string line)
    {
        var m = LineRegex().Match(line);
        if (!m.Success) { return null; }
        var ts = m.Groups["ts"].Value;
        DateTimeOffset? when = null;
        // Go's time.String(): "2006-01-02 15:04:05.999999999 -0700 MST"; .NET parses at most 7 fraction digits
        var parts = ts.Split(' ');
        var clock = parts[1].Length > 16 ? parts[1][..16] : parts[1];
        if (DateTimeOffset.TryParseExact($"{parts[0]} {clock} {parts[2]}", ["yyyy-MM-dd HH:mm:ss.FFFFFFF zzz", "yyyy-MM-dd HH:mm:ss zzz"],
                CultureInfo.InvariantCulture, DateTimeStyles.None, out var t))
        {
            when = t;
        }
        return new CtrEvent(line, when, m.Groups["ns"].Value, m.Groups["topic"].Value, m.Groups["json"].Value);
    }
}

/// <summary><c>ctr events</c> running in the background; collects lines and lets a test wait for one.</summary>
internal sealed class EventStream : IAsyncDisposable
{
    private readonly Process _ctr;
    private readonly Lock _gate = new();
    private readonly List<CtrEvent> _events = []; // guarded by _gate
    private readonly List<string> _other = [];    // guarded by _gate
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously); // guarded by _gate
    private readonly Task _reader;

    public EventStream(ProcessStartInfo psi)
    {
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        _ctr = Process.Start(psi) ?? throw new InvalidOperationException("could not start ctr events");
        _reader = Task.WhenAll(ReadAsync(_ctr.StandardOutput), ReadAsync(_ctr.StandardError));
    }

    /// <summary>Everything seen so far.</summary>
    public IReadOnlyList<CtrEvent> Events
    {
        get { lock (_gate) { return [.. _events]; } }
    }

    /// <summary>Lines that were not events (ctr errors, for assertion messages).</summary>
    public string OtherOutput
    {
        get { lock (_gate) { return string.Join('\n', _other); } }
    }

    /// <summary>Waits until the events seen so far satisfy the predicate; fails with what was seen on timeout.</summary>
    public async Task<IReadOnlyList<CtrEvent>> WaitForAsync(Func<IReadOnlyList<CtrEvent>, bool> predicate, TimeSpan timeout, string what, CancellationToken ct = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        while (true)
        {
            Task changed;
            IReadOnlyList<CtrEvent> snapshot;
            lock (_gate)
            {
                snapshot = [.. _events];
                changed = _changed.Task;
            }
            if (predicate(snapshot)) { return snapshot; }
            try { await changed.WaitAsync(deadline.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException(
                    $"no {what} within {timeout.TotalSeconds:0} s; events seen:\n{string.Join('\n', snapshot.Select(e => e.Raw))}\nother ctr output: {OtherOutput}");
            }
        }
    }

    /// <summary>
    /// Makes sure the subscription is live before the test acts: creates the namespace (an event
    /// of its own) and waits for it to come back, relabelling until it does.
    /// </summary>
    public async Task EnsureSubscribedAsync(PrivateContainerd ctrd, string ns, CancellationToken ct)
    {
        (await ctrd.CtrAsync(ns, ["namespaces", "create", ns], ct: ct)).EnsureSuccess();
        for (int i = 0; ; i++)
        {
            try
            {
                await WaitForAsync(es => es.Any(e => e.Topic.StartsWith("/namespaces/", StringComparison.Ordinal) && e.Raw.Contains(ns, StringComparison.Ordinal)),
                    TimeSpan.FromSeconds(1), "namespace event", ct);
                return;
            }
            catch (TimeoutException) when (i < 20)
            {
                await ctrd.CtrAsync(ns, ["namespaces", "label", ns, $"rcs-probe={i}"], ct: ct);
            }
        }
    }

    private async Task ReadAsync(StreamReader r)
    {
        while (await r.ReadLineAsync() is { } line)
        {
            var e = CtrEvent.Parse(line);
            lock (_gate)
            {
                if (e is not null) { _events.Add(e); } else { _other.Add(line); }
                _changed.TrySetResult();
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try { _ctr.Kill(); } catch (InvalidOperationException) { }
        await _ctr.WaitForExitAsync(CancellationToken.None);
        await _reader;
        _ctr.Dispose();
    }
}
