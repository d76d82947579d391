export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  public: {
    Tables: {
      action_logs: {
        Row: {
          connector_id: string
          created_at: string
          error: string | null
          id: string
          latency_ms: number | null
          request: Json | null
          response: Json | null
          status: string | null
          tool_name: string
          user_id: string
        }
        Insert: {
          connector_id: string
          created_at?: string
          error?: string | null
          id?: string
          latency_ms?: number | null
          request?: Json | null
          response?: Json | null
          status?: string | null
          tool_name: string
          user_id: string
        }
        Update: {
          connector_id?: string
          created_at?: string
          error?: string | null
          id?: string
          latency_ms?: number | null
          request?: Json | null
          response?: Json | null
          status?: string | null
          tool_name?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "action_logs_connector_id_fkey"
            columns: ["connector_id"]
            isOneToOne: false
            referencedRelation: "connectors"
            referencedColumns: ["id"]
          },
        ]
      }
      connector_tools: {
        Row: {
          connector_id: string
          created_at: string
          description: string | null
          id: string
          name: string
          schema: Json | null
          source: Database["public"]["Enums"]["tool_source"]
        }
        Insert: {
          connector_id: string
          created_at?: string
          description?: string | null
          id?: string
          name: string
          schema?: Json | null
          source?: Database["public"]["Enums"]["tool_source"]
        }
        Update: {
          connector_id?: string
          created_at?: string
          description?: string | null
          id?: string
          name?: string
          schema?: Json | null
          source?: Database["public"]["Enums"]["tool_source"]
        }
        Relationships: [
          {
            foreignKeyName: "connector_tools_connector_id_fkey"
            columns: ["connector_id"]
            isOneToOne: false
            referencedRelation: "connectors"
            referencedColumns: ["id"]
          },
        ]
      }
      connectors: {
        Row: {
          auth_type: Database["public"]["Enums"]["auth_type"]
          category: string | null
          created_at: string
          description: string | null
          icon_url: string | null
          id: string
          is_active: boolean | null
          mcp_server_url: string | null
          name: string
          oauth_config: Json | null
          oauth_provider: string | null
          oauth_scopes: string[] | null
          slug: string
        }
        Insert: {
          auth_type?: Database["public"]["Enums"]["auth_type"]
          category?: string | null
          created_at?: string
          description?: string | null
          icon_url?: string | null
          id?: string
          is_active?: boolean | null
          mcp_server_url?: string | null
          name: string
          oauth_config?: Json | null
          oauth_provider?: string | null
          oauth_scopes?: string[] | null
          slug: string
        }
        Update: {
          auth_type?: Database["public"]["Enums"]["auth_type"]
          category?: string | null
          created_at?: string
          description?: string | null
          icon_url?: string | null
          id?: string
          is_active?: boolean | null
          mcp_server_url?: string | null
          name?: string
          oauth_config?: Json | null
          oauth_provider?: string | null
          oauth_scopes?: string[] | null
          slug?: string
        }
        Relationships: []
      }
      oauth_transactions: {
        Row: {
          code_verifier_hash: string
          completed_at: string | null
          connector_id: string
          created_at: string
          id: string
          redirect_uri: string
          state: string
          status: Database["public"]["Enums"]["oauth_transaction_status"]
          user_id: string
        }
        Insert: {
          code_verifier_hash: string
          completed_at?: string | null
          connector_id: string
          created_at?: string
          id?: string
          redirect_uri: string
          state: string
          status?: Database["public"]["Enums"]["oauth_transaction_status"]
          user_id: string
        }
        Update: {
          code_verifier_hash?: string
          completed_at?: string | null
          connector_id?: string
          created_at?: string
          id?: string
          redirect_uri?: string
          state?: string
          status?: Database["public"]["Enums"]["oauth_transaction_status"]
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "oauth_transactions_connector_id_fkey"
            columns: ["connector_id"]
            isOneToOne: false
            referencedRelation: "connectors"
            referencedColumns: ["id"]
          },
        ]
      }
      pipeline_events: {
        Row: {
          data: Json | null
          id: string
          job_id: string
          level: Database["public"]["Enums"]["event_level"]
          message: string
          ts: string
          user_id: string
        }
        Insert: {
          data?: Json | null
          id?: string
          job_id: string
          level?: Database["public"]["Enums"]["event_level"]
          message: string
          ts?: string
          user_id: string
        }
        Update: {
          data?: Json | null
          id?: string
          job_id?: string
          level?: Database["public"]["Enums"]["event_level"]
          message?: string
          ts?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "pipeline_events_job_id_fkey"
            columns: ["job_id"]
            isOneToOne: false
            referencedRelation: "pipeline_jobs"
            referencedColumns: ["id"]
          },
        ]
      }
      pipeline_jobs: {
        Row: {
          connector_id: string
          created_at: string
          error: string | null
          finished_at: string | null
          id: string
          input: Json | null
          output: Json | null
          started_at: string | null
          status: Database["public"]["Enums"]["job_status"]
          type: string
          user_id: string
        }
        Insert: {
          connector_id: string
          created_at?: string
          error?: string | null
          finished_at?: string | null
          id?: string
          input?: Json | null
          output?: Json | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["job_status"]
          type: string
          user_id: string
        }
        Update: {
          connector_id?: string
          created_at?: string
          error?: string | null
          finished_at?: string | null
          id?: string
          input?: Json | null
          output?: Json | null
          started_at?: string | null
          status?: Database["public"]["Enums"]["job_status"]
          type?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "pipeline_jobs_connector_id_fkey"
            columns: ["connector_id"]
            isOneToOne: false
            referencedRelation: "connectors"
            referencedColumns: ["id"]
          },
        ]
      }
      user_connections: {
        Row: {
          connector_id: string
          created_at: string
          expires_at: string | null
          id: string
          last_used_at: string | null
          scopes: string[] | null
          secret_ref_access: string | null
          secret_ref_refresh: string | null
          status: Database["public"]["Enums"]["connection_status"]
          updated_at: string
          user_id: string
        }
        Insert: {
          connector_id: string
          created_at?: string
          expires_at?: string | null
          id?: string
          last_used_at?: string | null
          scopes?: string[] | null
          secret_ref_access?: string | null
          secret_ref_refresh?: string | null
          status?: Database["public"]["Enums"]["connection_status"]
          updated_at?: string
          user_id: string
        }
        Update: {
          connector_id?: string
          created_at?: string
          expires_at?: string | null
          id?: string
          last_used_at?: string | null
          scopes?: string[] | null
          secret_ref_access?: string | null
          secret_ref_refresh?: string | null
          status?: Database["public"]["Enums"]["connection_status"]
          updated_at?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "user_connections_connector_id_fkey"
            columns: ["connector_id"]
            isOneToOne: false
            referencedRelation: "connectors"
            referencedColumns: ["id"]
          },
        ]
      }
    }
    Views: {
      [_ in never]: never
    }
    Functions: {
      [_ in never]: never
    }
    Enums: {
      auth_type: "oauth" | "api_key" | "none"
      connection_status: "pending" | "active" | "expired" | "revoked" | "error"
      event_level: "info" | "warn" | "error"
      job_status: "queued" | "running" | "succeeded" | "failed" | "canceled"
      oauth_transaction_status: "started" | "completed" | "failed"
      tool_source: "mcp" | "rest"
    }
    CompositeTypes: {
      [_ in never]: never
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  public: {
    Enums: {
      auth_type: ["oauth", "api_key", "none"],
      connection_status: ["pending", "active", "expired", "revoked", "error"],
      event_level: ["info", "warn", "error"],
      job_status: ["queued", "running", "succeeded", "failed", "canceled"],
      oauth_transaction_status: ["started", "completed", "failed"],
      tool_source: ["mcp", "rest"],
    },
  },
} as const

