using System.Diagnostics.CodeAnalysis;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Shim.Core.Logging;

/// <summary>Log levels, ordered as logrus orders them for containerd.</summary>
public enum LogLevel
{
    /// <summary>Verbose detail, shown with -debug.</summary>
    Debug,
    /// <summary>Normal lifecycle lines.</summary>
    Info,
    /// <summary>Something went wrong but the shim carries on.</summary>
    Warn,
    /// <summary>An operation failed.</summary>
    Error,
}

/// <summary>
/// The shim's log: logrus-style text lines on fd 2, which serve mode points at the bundle's `log`
/// FIFO (containerd copies it into its own log). Writes never block: when the FIFO is full the line
/// is dropped and counted, because a stuck log must not stall container I/O.
/// </summary>
public static class ShimLog
{
    private static readonly Lock Gate = new();
    private static FileStream? _sink;
    private static long _dropped;

    /// <summary>Lines below this level are skipped (-debug lowers it to Debug).</summary>
    public static LogLevel MinLevel { get; set; } = LogLevel.Info;

    /// <summary>Fields added to every line (namespace, id).</summary>
    public static string CommonFields { get; set; } = "";

    /// <summary>True when debug lines are written; guard field formatting on hot paths with it.</summary>
    public static bool DebugEnabled => MinLevel <= LogLevel.Debug && _sink is not null;

    /// <summary>Lines dropped because the log pipe was full.</summary>
    public static long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Writes to an already non-blocking fd 2 from now on.</summary>
    [SuppressMessage("Reliability", "CA2000:Dispose objects before losing scope", Justification = "the sink lives as long as the process; its handle does not own fd 2")]
    public static void UseStderr()
    {
        lock (Gate)
        {
            _sink = new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 0);
        }
    }

    /// <summary>Debug line.</summary>
    public static void Debug(string message, string? fields = null) => Write(LogLevel.Debug, message, fields);

    /// <summary>Info line.</summary>
    public static void Info(string message, string? fields = null) => Write(LogLevel.Info, message, fields);

    /// <summary>Warning line.</summary>
    public static void Warn(string message, string? fields = null) => Write(LogLevel.Warn, message, fields);

    /// <summary>Error line.</summary>
    public static void Error(string message, string? fields = null) => Write(LogLevel.Error, message, fields);

    /// <summary>Formats one field as logrus does (quoted when needed).</summary>
    public static string Field(string key, object? value)
    {
        string text = value?.ToString() ?? "";
        bool quote = text.Length == 0 || text.AsSpan().IndexOfAny(" =\"\t\n") >= 0;
        return quote ? $"{key}={Quote(text)}" : $"{key}={text}";
    }

    private static void Write(LogLevel level, string message, string? fields)
    {
        if (level < MinLevel || _sink is null)
        {
            return;
        }
        var line = new StringBuilder(128);
        line.Append("time=\"").Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ", System.Globalization.CultureInfo.InvariantCulture))
            .Append("\" level=").Append(level switch { LogLevel.Debug => "debug", LogLevel.Info => "info", LogLevel.Warn => "warning", _ => "error" })
            .Append(" msg=").Append(Quote(message));
        if (fields is { Length: > 0 })
        {
            line.Append(' ').Append(fields);
        }
        if (CommonFields.Length > 0)
        {
            line.Append(' ').Append(CommonFields);
        }
        line.Append('\n');
        byte[] bytes = Encoding.UTF8.GetBytes(line.ToString());
        lock (Gate)
        {
            try
            {
                _sink.Write(bytes);
            }
            catch (IOException)
            {
                Interlocked.Increment(ref _dropped);
            }
        }
    }

    private static string Quote(string text) =>
        "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "\"";
}
