"""What people read: summary.json, report.html and the text summary."""
