import java.sql.*;
import java.util.*;

/** DatabaseMetaData as a tool sees it (DBeaver, DataGrip and Metabase all start here): one line per
 *  fact, so that the answer through the gateway can be compared with direct PostgreSQL.
 *  Arguments: url user password options */
public class JdbcMetadata {
    static void dump(String what, ResultSet rs, String... cols) throws SQLException {
        List<String> lines = new ArrayList<>();
        while (rs.next()) {
            StringBuilder b = new StringBuilder(what);
            for (String c : cols) b.append('|').append(rs.getString(c));
            lines.add(b.toString());
        }
        rs.close();
        Collections.sort(lines);
        for (String l : lines) System.out.println(l);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("options", args[3]);
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("schema|" + c.getSchema() + "|catalog|" + c.getCatalog());
            System.out.println("isolation|" + c.getTransactionIsolation());
            c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
            System.out.println("isolation|" + c.getTransactionIsolation());
            c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
            c.setReadOnly(true);
            System.out.println("readonly|" + c.isReadOnly());
            System.out.println("product|" + md.getDatabaseProductName() + "|" + md.getIdentifierQuoteString());
            dump("schemas", md.getSchemas(), "TABLE_SCHEM");
            dump("tables", md.getTables(null, "dmv", "%", null), "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE", "REMARKS");
            dump("columns", md.getColumns(null, "dmv", "%", "%"), "TABLE_NAME", "COLUMN_NAME", "DATA_TYPE",
                 "TYPE_NAME", "COLUMN_SIZE", "NULLABLE", "ORDINAL_POSITION", "IS_AUTOINCREMENT");
            for (String t : new String[] {"persons", "licenses", "vehicles", "violations", "lawful_presence",
                                          "identity_documents"}) {
                dump("pk", md.getPrimaryKeys(null, "dmv", t), "TABLE_NAME", "COLUMN_NAME", "KEY_SEQ", "PK_NAME");
                dump("index", md.getIndexInfo(null, "dmv", t, false, true), "TABLE_NAME", "NON_UNIQUE",
                     "INDEX_NAME", "COLUMN_NAME", "ORDINAL_POSITION");
                dump("fk", md.getImportedKeys(null, "dmv", t), "PKTABLE_NAME", "PKCOLUMN_NAME", "FKTABLE_NAME",
                     "FKCOLUMN_NAME", "FK_NAME");
            }
            dump("type", md.getTypeInfo(), "TYPE_NAME", "DATA_TYPE", "PRECISION");
            dump("function", md.getFunctions(null, "dmv", "%"), "FUNCTION_NAME");
        }
    }
}
