using System.Globalization;
using System.Text;

namespace Shim.Core.Processes;

/// <summary>
/// The init exit kept in the bundle, so that the `delete` action can report the real status and time
/// after the shim itself died, instead of the Go shim's fixed 137.
/// </summary>
public static class ExitRecord
{
    /// <summary>File name inside the bundle.</summary>
    public const string FileName = BundleFiles.ExitStatus;

    /// <summary>Writes "status unix-nanoseconds" atomically (temp file, then rename).</summary>
    public static void Write(string bundle, int status, DateTimeOffset exitedAt)
    {
        string path = Path.Combine(bundle, FileName);
        string temp = path + ".tmp";
        long nanos = (exitedAt.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        File.WriteAllText(temp, string.Create(CultureInfo.InvariantCulture, $"{status} {nanos}\n"), Encoding.ASCII);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>Reads the record back; null when there is none or it is unreadable.</summary>
    public static (int Status, DateTimeOffset ExitedAt)? Read(string bundle)
    {
        try
        {
            string[] parts = File.ReadAllText(Path.Combine(bundle, FileName)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int status)
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long nanos))
            {
                return (status, DateTimeOffset.UnixEpoch.AddTicks(nanos / 100));
            }
        }
        catch (IOException)
        {
        }
        return null;
    }
}
