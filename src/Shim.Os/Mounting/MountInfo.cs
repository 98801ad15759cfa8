using System.Text;

namespace Shim.Os.Mounting;

/// <summary>Reads mount points from /proc/self/mountinfo.</summary>
internal static class MountInfo
{
    /// <summary>Mount points of this mount namespace, in mountinfo order (a stacked mount appears once per layer).</summary>
    internal static List<string> ReadMountPoints() => ParseMountPoints(File.ReadAllText("/proc/self/mountinfo"));

    /// <summary>The fifth field of every line, with the kernel's octal escapes (\040 etc.) decoded.</summary>
    internal static List<string> ParseMountPoints(string mountinfo)
    {
        var points = new List<string>();
        foreach (var line in mountinfo.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4)
            {
                points.Add(Unescape(fields[4]));
            }
        }
        return points;
    }

    /// <summary>True if <paramref name="path"/> is <paramref name="root"/> or lies beneath it (both absolute, no trailing slash).</summary>
    internal static bool IsAtOrUnder(string path, string root) =>
        root == "/"
            ? path.StartsWith('/')
            : path == root || (path.StartsWith(root, StringComparison.Ordinal) && path.Length > root.Length && path[root.Length] == '/');

    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }
        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                bytes.Add((byte)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';
}
