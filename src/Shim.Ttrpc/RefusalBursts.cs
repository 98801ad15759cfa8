namespace Shim.Ttrpc;

/// <summary>What to log about connections refused over the bound, if anything.</summary>
internal enum RefusalReportKind
{
    /// <summary>Nothing: a refusal inside a burst already reported, or an admission outside any burst.</summary>
    None,

    /// <summary>The first refusal since connections were last admitted.</summary>
    BurstStarted,

    /// <summary>A burst lasting longer than the report interval: the refusals counted since the last line.</summary>
    StillRefusing,

    /// <summary>A connection was admitted again: the refusals of the burst not reported yet.</summary>
    BurstEnded,
}

internal readonly record struct RefusalReport(RefusalReportKind Kind, int Count)
{
    public static readonly RefusalReport None = new(RefusalReportKind.None, 0);
}

/// <summary>
/// Rate-limits the log of refused connections to one line per burst: the first refusal is
/// reported, the next ones only counted; the count goes out when connections are admitted again,
/// or once a minute while the burst lasts. A clock read per refusal, no timer. Not thread-safe:
/// the server calls it under its lock.
/// </summary>
internal sealed class RefusalBursts(TimeProvider time)
{
    private static readonly TimeSpan ReportEvery = TimeSpan.FromMinutes(1);

    private bool _inBurst;
    private long _reportedAt;   // timestamp of the burst's latest line
    private int _unreported;    // refusals since that line

    /// <summary>A connection was refused.</summary>
    public RefusalReport Refused()
    {
        if (!_inBurst)
        {
            _inBurst = true;
            _reportedAt = time.GetTimestamp();
            _unreported = 0;
            return new(RefusalReportKind.BurstStarted, 1);
        }

        _unreported++;
        if (time.GetElapsedTime(_reportedAt) < ReportEvery)
        {
            return RefusalReport.None;
        }

        var report = new RefusalReport(RefusalReportKind.StillRefusing, _unreported);
        _reportedAt = time.GetTimestamp();
        _unreported = 0;
        return report;
    }

    /// <summary>A connection was admitted: ends a burst.</summary>
    public RefusalReport Admitted()
    {
        if (!_inBurst)
        {
            return RefusalReport.None;
        }

        _inBurst = false;
        return _unreported == 0 ? RefusalReport.None : new(RefusalReportKind.BurstEnded, _unreported);
    }
}
