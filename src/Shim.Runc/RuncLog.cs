using System.Text;
using System.Text.Json;

namespace Shim.Runc;

/// <summary>Reads runc's JSON log (<c>--log-format json</c>) for the text of its last error.</summary>
internal static class RuncLog
{
    private const int TailBytes = 64 * 1024;

    /// <summary>The "msg" of the last line whose level is "error", or null.</summary>
    public static string? LastError(string path)
    {
        byte[] tail;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.None);
            long start = Math.Max(0, file.Length - TailBytes);
            file.Position = start;
            tail = new byte[file.Length - start];
            file.ReadExactly(tail);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        return LastErrorIn(tail);
    }

    /// <summary>The "msg" of the last error line in a chunk of JSON lines (partial first line ignored).</summary>
    public static string? LastErrorIn(ReadOnlySpan<byte> text)
    {
        while (!text.IsEmpty)
        {
            int nl = text.TrimEnd((byte)'\n').LastIndexOf((byte)'\n');
            var line = nl < 0 ? text : text[(nl + 1)..];
            text = nl < 0 ? default : text[..nl];
            if (TryParse(line.TrimEnd((byte)'\n'), out var level, out var msg) && level == "error" && msg is not null)
            {
                return msg;
            }
        }
        return null;
    }

    private static bool TryParse(ReadOnlySpan<byte> line, out string? level, out string? msg)
    {
        level = null;
        msg = null;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isLevel = reader.ValueTextEquals("level"u8);
                bool isMsg = reader.ValueTextEquals("msg"u8);
                if (!reader.Read())
                {
                    return false;
                }
                if (reader.TokenType == JsonTokenType.String)
                {
                    if (isLevel)
                    {
                        level = reader.GetString();
                    }
                    else if (isMsg)
                    {
                        msg = reader.GetString();
                    }
                }
                else
                {
                    reader.Skip();
                }
            }
            return level is not null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: GetString on invalid UTF-8 or a lone \ud800 escape (found by fuzz/run.sh runc-log)
            return false;
        }
    }

    internal static string Trim(ReadOnlySpan<byte> stderr) => Encoding.UTF8.GetString(stderr).Trim();
}
